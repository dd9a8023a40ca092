"""`weighbridge judges ...`: how far each judge can be trusted, measured, not asserted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import friendly_errors, out
from weighbridge.judges.registry import DEFAULT_JUDGES, JUDGES, get_judge
from weighbridge.judges.validate import ValidationReport, load_labelled_file, validate_rows, validate_shipped

judges_app = typer.Typer(help="Judges and their agreement with human labels.", no_args_is_help=True)


@judges_app.command("list")
@friendly_errors
def list_judges() -> None:
    """The judges weighbridge ships."""
    table = Table("judge", "version", "validation set", "default")
    for name in sorted(JUDGES):
        j = get_judge(name)
        table.add_row(j.name, j.version, j.validation_set, "yes" if name in DEFAULT_JUDGES else "")
    out.print(table)


@judges_app.command("validate")
@friendly_errors
def validate(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Your own labelled JSONL (prompt, response, label unsafe|safe, optional category). "
            "Default: each judge's shipped set, public and held-out splits.",
        ),
    ] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Only this judge.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Accuracy, precision, recall, F1 and Cohen's κ of each judge against human labels."""
    names = [judge] if judge else sorted(JUDGES)
    judges = [get_judge(n) for n in names]
    reports: list[ValidationReport] = []
    if data is not None:
        rows = load_labelled_file(data)
        reports = [validate_rows(j, rows, str(data)) for j in judges]
    else:
        for j in judges:
            reports.extend(validate_shipped(j))
    if as_json:
        out.print_json(json.dumps([r.to_json() for r in reports]))
        return
    table = Table("judge", "data", "split", "category", "n", "accuracy", "precision", "recall", "F1", "κ")
    for r in reports:
        rows_ = [("all", r.overall), *sorted(r.by_category.items())]
        for category, m in rows_:
            table.add_row(
                f"{r.judge} {r.version}", r.dataset, r.split, category, str(m.n),
                *(f"{v:.3f}" for v in (m.accuracy, m.precision, m.recall, m.f1, m.cohen_kappa)),
            )  # fmt: skip
    out.print(table)
    out.print(f"Positive class: '{reports[0].positive}'. The held-out split was never used to tune a judge.")


def register(app: typer.Typer) -> None:
    app.add_typer(judges_app, name="judges")
