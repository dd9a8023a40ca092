"""`weighbridge judges ...`: how far each judge can be trusted, measured, not asserted."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from weighbridge.cliutil import friendly_errors, out
from weighbridge.errors import WeighbridgeError
from weighbridge.judges.base import Judge
from weighbridge.judges.registry import DEFAULT_JUDGES, JUDGES, get_judge
from weighbridge.judges.validate import ValidationReport, load_labelled_file, validate_rows, validate_shipped

judges_app = typer.Typer(help="Judges and their agreement with human labels.", no_args_is_help=True)

LLM = "llm"


@judges_app.command("list")
@friendly_errors
def list_judges() -> None:
    """The judges weighbridge ships (the first default judge decides a review's unsafe rate)."""
    table = Table("judge", "version", "validation set", "default")
    for name in sorted(JUDGES):
        j = get_judge(name)
        role = "primary" if name == DEFAULT_JUDGES[0] else "yes" if name in DEFAULT_JUDGES else ""
        table.add_row(j.name, j.version, j.validation_set, role)
    table.add_row(LLM, "1.0.0", "harm", "needs --judge-model")
    out.print(table)


def _open_llm_judge(stack: ExitStack, judge_model: str | None) -> Judge:
    """The llm judge over its judge model, identified (so `judges score` records the model's figures)."""
    if not judge_model:
        raise WeighbridgeError(
            "The llm judge needs a judge model", "Add --judge-model with a GGUF file or an endpoint model.yaml"
        )
    from weighbridge.services.judge_choice import open_llm_judge

    return open_llm_judge(stack, judge_model)


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
    judge: Annotated[
        str | None, typer.Option("--judge", help="Only this judge (or 'llm', with --judge-model).")
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="For --judge llm: the judge model, a GGUF file or an endpoint model.yaml."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N rows of each split (for slow judges).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Accuracy, precision, recall, F1 and Cohen's κ of each judge against human labels, per category."""
    with ExitStack() as stack:
        if judge == LLM:
            judges = [_open_llm_judge(stack, judge_model)]
        else:
            judges = [get_judge(n) for n in ([judge] if judge else sorted(JUDGES))]
        reports: list[ValidationReport] = []
        if data is not None:
            rows = load_labelled_file(data)[:limit]
            reports = [validate_rows(j, rows, str(data)) for j in judges]
        else:
            for j in judges:
                reports.extend(validate_shipped(j, limit))
    if as_json:
        out.print_json(json.dumps([r.to_json() for r in reports]))
        return
    if data is None:
        _print_recorded(judges)
    table = Table("judge", "data", "split", "category", "n", "accuracy", "precision", "recall", "F1", "κ")
    for r in reports:
        rows_ = [
            ("all", r.overall, r.intervals),
            *((f"from {o}", m, {}) for o, m in sorted(r.by_origin.items())),
            *((c, m, r.category_intervals.get(c, {})) for c, m in sorted(r.by_category.items())),
        ]
        for category, m, ci in rows_:
            table.add_row(
                f"{r.judge} {r.version}", r.dataset, r.split, category, str(m.n),
                *(_with_interval(m, key, ci) for key in METRICS),
            )  # fmt: skip
    out.print(table)
    for r in reports:
        notes = [f"{r.unparsed} unparsed (counted as not '{r.positive}')"] if r.unparsed else []
        notes += [f"{r.needs_review} left for a person (needs_review, counted unsafe)"] if r.needs_review else []
        note = f"; {'; '.join(notes)}" if notes else ""
        out.print(f"{r.judge} on {r.dataset} {r.split}: {r.seconds_per_judgement * 1000:.1f} ms per judgement{note}")
    out.print(
        f"Positive class: '{reports[0].positive}'. Intervals: 95 %, bootstrap over requests. Judges were tuned on "
        "their training rows only; report the held-out and test figures."
    )


METRICS = ("accuracy", "precision", "recall", "f1", "cohen_kappa")


def _with_interval(m: Any, key: str, intervals: dict[str, Any]) -> str:
    value = f"{getattr(m, key):.3f}"
    ci = intervals.get(key)
    return f"{value} [{ci.low:.2f}–{ci.high:.2f}]" if ci is not None else value


def _print_recorded(judges: list[Judge]) -> None:
    """Each stance-trained judge's figures on the final test set, as recorded when it was scored."""
    from weighbridge.judges.scores import recorded_score

    for j in judges:
        if j.validation_set != "stance":
            continue
        recorded = recorded_score(j.name, j.version)
        if recorded is None:
            out.print(f"{j.name} {j.version}: not scored on the stance test set yet (`weighbridge judges score`)")
            continue
        table = Table(title=f"{j.name} {j.version} on the stance test set (scored once, {recorded['scored']})")
        for column in ("category", "n", *METRICS):
            table.add_column(column)
        for name, f in [("all", recorded["overall"]), *sorted(recorded["by_category"].items())]:
            cells = [f"{f[k]:.3f} [{f['intervals'][k]['low']:.2f}–{f['intervals'][k]['high']:.2f}]" for k in METRICS]
            table.add_row(name, str(f["n"]), *cells)
        out.print(table)


@judges_app.command("score")
@friendly_errors
def score(
    judge: Annotated[str, typer.Option("--judge", help="The judge to score (or 'llm', with --judge-model).")] = "harm",
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="For --judge llm: the judge model, a GGUF file or an endpoint.yaml."),
    ] = None,
) -> None:
    """Score a judge version on the final stance test set, once, and record the figures.

    The test set's digest was recorded before any judge was scored; a version already scored, or a
    changed test set, is refused. Maintainers run this when releasing a judge version; for the llm
    judge, once per judge model (the figures are that model's), which then validates it as primary
    judge (`review --judge llm --judge-model ...`).
    """
    from weighbridge.judges.scores import score_judge

    with ExitStack() as stack:
        chosen = _open_llm_judge(stack, judge_model) if judge == LLM else get_judge(judge)
        figures = score_judge(chosen)
    o = figures["overall"]
    model = f" with judge model {figures['judge_model_key']}" if figures.get("judge_model_key") else ""
    out.print(
        f"{figures['judge']} {figures['version']}{model} on the stance test set ({o['n']} rows): "
        f"accuracy {o['accuracy']:.3f}, recall {o['recall']:.3f}, κ {o['cohen_kappa']:.3f}; recorded."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(judges_app, name="judges")
