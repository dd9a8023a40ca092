"""`weighbridge readiness`: a lab's pre-submission checklist (what a reviewer would flag)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import MaxTokensOption, RichProgress, ThreadsOption, err, friendly_errors, out

if TYPE_CHECKING:
    from weighbridge.services.readiness import Readiness

_MARK = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def register(app: typer.Typer) -> None:
    app.command("readiness")(readiness)


@friendly_errors
def readiness(
    path: Annotated[Path, typer.Argument(help="The model file or directory you intend to submit.")],
    card: Annotated[Path | None, typer.Option("--card", help="The model card (Markdown).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Static checks only: no model is run.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Hazard prompts per category in the slice.")] = 2,
    tokens: Annotated[
        float | None, typer.Option("--tokens", help="Training tokens, for the compute estimate (e.g. 2e12).")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="Your model-signing public key (PEM).")
    ] = None,
    policy: Annotated[str, typer.Option("--policy", help="Policy to predict with: default, high-risk or a file.")] = (
        "default"
    ),
    max_tokens: MaxTokensOption = 64,
    threads: ThreadsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable checklist.")] = False,
) -> None:
    """Check a model before submitting it: card, weights, signature, a hazard slice, the likely release
    type. Nothing is stored. Exit 0 when nothing would block the review, 1 when something would."""
    from weighbridge.domain import GenerationParams
    from weighbridge.policy import load_policy
    from weighbridge.services.readiness import assess

    result = assess(
        path,
        card,
        quick=quick,
        limit=limit,
        tokens=tokens,
        public_key=public_key,
        policy=load_policy(policy),
        params=GenerationParams(max_tokens=max_tokens),
        n_threads=threads,
        progress=None if as_json else RichProgress(err),
    )
    if as_json:
        payload = {
            "model": result.model,
            "blocking": result.blocking,
            "counts": result.counts(),
            "evaluated": result.evaluated,
            "predicted_release": result.recommendation.release if result.recommendation else None,
            "checks": [asdict(c) for c in result.checks],
        }
        out.print(json.dumps(payload, indent=2, ensure_ascii=False), markup=False)
    else:
        _render(result)
    if result.blocking:
        raise typer.Exit(code=1)


def _render(result: Readiness) -> None:
    table = Table("", "area", "check", "how to fix", title=f"Readiness of {result.model}", title_justify="left")
    order = {"fail": 0, "warn": 1, "pass": 2}
    for c in sorted(result.checks, key=lambda c: order[c.status]):
        detail = f"\n[dim]{c.detail}[/]" if c.detail else ""
        table.add_row(_MARK[c.status], c.area, f"{c.title}{detail}", c.fix)
    out.print(table)
    n = result.counts()
    verdict = (
        "[bold red]Not ready[/]: fix the FAIL lines before submitting."
        if result.blocking
        else "[bold green]Ready to submit[/]" + (": review the warnings first." if n["warn"] else ".")
    )
    out.print(f"{n['pass']} pass, {n['warn']} warn, {n['fail']} fail. {verdict}")
