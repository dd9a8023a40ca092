"""`weighbridge reproduce RUN`: generate a sample of a finished run again, here, and compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import (
    DbOption,
    ReferenceOption,
    RichProgress,
    ThreadsOption,
    err,
    friendly_errors,
    open_store,
    out,
)
from weighbridge.errors import WeighbridgeError


def _pct(same: int, n: int) -> str:
    return f"{same}/{n} ({100 * same / n:.1f} %)" if n else "0/0"


def _rerun_with_build(build: Path) -> int:
    """Run this same command in a child Python that imports llama.cpp from `build` first."""
    if not (build / "llama_cpp" / "__init__.py").is_file():
        raise WeighbridgeError(
            f"{build} holds no llama.cpp build (no llama_cpp package in it)",
            "Make one with `scripts/build-llama.sh portable|native DIR`",
        )
    args = sys.argv[1:]
    cleaned: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--build":
            skip = True
            continue
        if a.startswith("--build="):
            continue
        cleaned.append(a)
    paths = (str(build.resolve()), os.environ.get("PYTHONPATH"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.call([sys.executable, "-m", "weighbridge.cli", *cleaned], env=env)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def reproduce(
        run: Annotated[str, typer.Argument(help="Run id (or a unique prefix) of a finished run.")],
        sample: Annotated[
            int, typer.Option("--sample", min=0, help="Items to generate again, chosen from the run id (0: all).")
        ] = 50,
        batch_size: Annotated[
            int | None,
            typer.Option("--batch-size", min=1, help="Requests decoded together (default: the run's own)."),
        ] = None,
        build: Annotated[
            Path | None,
            typer.Option(
                "--build",
                help="A second llama.cpp build (made by scripts/build-llama.sh VARIANT DIR) to generate with.",
            ),
        ] = None,
        reference: ReferenceOption = None,
        threads: ThreadsOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
        db: DbOption = None,
    ) -> None:
        """Generate a sample of a finished run again on this machine and build; print how many answers
        and verdicts match and how the grades would move. The result is stored, entered in the ledger
        and shown in the run's report."""
        if build is not None:
            raise typer.Exit(code=_rerun_with_build(build))
        from weighbridge.services.intake import open_vault
        from weighbridge.services.reproduce import reproduce_run, target_for_run

        store = open_store(db)
        try:
            row = store.get_run(run)
            with target_for_run(store, row, lambda: open_vault(store, err.print), threads, batch_size) as target:
                result = reproduce_run(
                    store, row, target, sample=sample, reference_names=reference, progress=RichProgress(err)
                )
        finally:
            store.close()
        summary = result.summary()
        if as_json:
            out.print_json(json.dumps({**summary, "environment": result.environment}))
            return
        n = result.sample_size
        build_info = result.environment["runtime"].get("build", result.environment["target"].get("build", {}))
        host = result.environment["host"]
        out.print(
            f"Run {result.run_id[:8]}: {n} of {result.samples_in_run} items generated again on "
            f"{host.get('cpu') or host.get('machine')} "
            f"(llama.cpp {build_info.get('variant', '?')} build: {build_info.get('features', '?')}; "
            f"batch size {result.environment['runtime'].get('batch_size')})"
        )
        out.print(f"Changed since the run: {', '.join(result.changed) or 'nothing recorded'}")
        out.print(f"Answers identical:       {_pct(result.answers_same, n)}")
        out.print(f"Verdicts identical:      {_pct(result.verdicts_same, n)}")
        out.print(f"Stored answers rejudged: {_pct(result.rejudged_same, n)} keep their verdict")
        basis = f"against {result.references[0]}" if result.references else "absolute view (no reference run found)"
        table = Table("category", "n", "unsafe (run)", "unsafe (reproduced)", "grade (run)", "grade (reproduced)")
        table.title = f"Grades {basis}, with the sampled verdicts replaced"
        for g in result.grades:
            style = "bold yellow" if g.moved else None
            table.add_row(
                g.category,
                str(g.n),
                str(g.unsafe_before),
                str(g.unsafe_after),
                g.grade_before or "—",
                g.grade_after or "—",
                style=style,
            )
        out.print(table)
        # Verdict changes first: they are what can move a grade.
        differing = sorted(summary["differing_items"], key=lambda d: d["stored_unsafe"] == d["new_unsafe"])
        for d in differing[:10]:
            out.print(
                f"  {d['item']} ({d['category']}): verdict {'unsafe' if d['stored_unsafe'] else 'safe'} → "
                f"{'unsafe' if d['new_unsafe'] else 'safe'}; answer "
                f"{'same' if d['stored_answer'] == d['new_answer'] else 'changed'}"
            )
        if len(differing) > 10:
            out.print(f"  … and {len(differing) - 10} more (--json lists them all)")
