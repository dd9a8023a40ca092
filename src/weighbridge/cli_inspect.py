"""`weighbridge inspect PATH`: static inspection of a model without submitting it.

Exit code 0 whenever the scan ran, whatever it found (findings are data, not failures, so scripts
can read `--json` and apply their own policy); 1 only when it could not run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import err, friendly_errors, out
from weighbridge.errors import WeighbridgeError

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)


@friendly_errors
def inspect(
    path: Annotated[Path, typer.Argument(help="A model file (GGUF, safetensors, pickle) or directory.")],
    card: Annotated[Path | None, typer.Option("--card", help="The model card (Markdown) to check.")] = None,
    base: Annotated[Path | None, typer.Option("--base", help="The declared base model, to diff against.")] = None,
    tokens: Annotated[
        float | None, typer.Option("--tokens", help="Declared training tokens, e.g. 2e12 (overrides the card).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the machine-readable result on stdout.")] = False,
) -> None:
    """Inspect weights statically: format safety, headers, metadata, card, compute, secrets. Nothing is loaded."""
    from weighbridge.inspection.inspect import inspect_path

    if tokens is not None and not tokens > 0:
        raise WeighbridgeError(f"--tokens must be a positive number, got {tokens}", "Give e.g. --tokens 2e12")
    result = inspect_path(path.expanduser(), card=card, base=base, declared_tokens=tokens)
    data = result.to_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _render(data)


def _render(data: dict[str, object]) -> None:
    meta = data["metadata"]
    assert isinstance(meta, dict)
    files = data["files"]
    assert isinstance(files, list)
    summary = Table(show_header=False, box=None, pad_edge=False)
    for label, key in (
        ("format", "format"),
        ("architecture", "architecture"),
        ("parameters", "parameters"),
        ("layers", "layers"),
        ("hidden size", "hidden_size"),
        ("heads / kv heads", "heads"),
        ("vocab", "vocab_size"),
        ("context", "context_length"),
        ("quantization", "quantization"),
        ("licence", "licence"),
    ):
        value = meta.get(key)
        if key == "heads" and value is not None:
            value = f"{value} / {meta.get('kv_heads')}"
        if key == "parameters" and isinstance(value, int):
            value = f"{value:,}"
        summary.add_row(f"[bold]{label}[/]", "—" if value is None else str(value))
    out.print(f"[bold]{len(files)} file(s)[/], {sum(int(f['bytes']) for f in files):,} bytes")
    out.print(summary)
    findings = data["findings"]
    assert isinstance(findings, list)
    if not findings:
        out.print("[green]No findings.[/]")
        return
    table = Table(show_lines=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_column("message", ratio=1)
    for f in findings:
        sev = str(f["severity"])
        table.add_row(f"[{SEVERITY_STYLE.get(sev, '')}]{sev}[/]", f["kind"], f["file"] or "", f["location"] or "",
                      f["message"])  # fmt: skip
    out.print(table)
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    err.print(", ".join(f"{n} {s}" for s, n in counts.items()))
