"""The machine-readable report: build it from run results, validate it, write it next to its HTML.

`report.json` is a contract with everything downstream (notices, model-card snippets, dashboards):
fields may be added, never removed. The contract lives in `schema/report.schema.json`;
`validate_report` checks a report against it and names the first field that is wrong.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from weighbridge.domain import CategoryResult, ModelRef, RunStats
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import Metric, Suite
from weighbridge.report.records import (
    GRADES,
    AdaptiveInfo,
    CategoryGrade,
    Comparison,
    ReferenceInfo,
    Transcript,
    pooled,
)

__all__ = [
    "AdaptiveInfo",
    "CategoryGrade",
    "Comparison",
    "JudgeInfo",
    "ReferenceInfo",
    "ReportFiles",
    "SuiteResultInput",
    "Transcript",
    "build_report",
    "load_schema",
    "validate_report",
    "write_reports",
]

# Fields `build_report` always writes at the top level; `extra` may not replace them.
_RESERVED = frozenset({"weighbridge_version", "created", "model", "suites", "judges", "timing", "references"})


@dataclass(frozen=True)
class SuiteResultInput:
    """One suite's graded results, as the report needs them.

    Args:
        suite_id: suite id (`"hazards"`); also the key under `suites` in the report.
        version: suite version label.
        title: human title of the suite.
        content_hash: digest of the exact items asked (`Suite.content_hash`), so a report names what
            was asked and not only a version label.
        categories: one result per category, in display order.
        overall: the pooled result over all categories. When `None`, `build_report` pools the
            categories itself (sum of `n` and `unsafe`, exact Clopper–Pearson 95 % interval).
        grades: category id (and `"overall"`) -> its grade with the comparisons behind it. A
            category without an entry is written as ungraded (`grade` and `grade_basis` null).
        adaptive: what sequential stopping saved, or None when the run sampled every item.
        transcripts: category id -> a few example exchanges for the report's drill-down.
        public: False for a private (held-out) suite: the report names it by digest, and its
            transcripts carry item ids and verdicts only (prompt and response left empty).
    """

    suite_id: str
    version: str
    title: str
    content_hash: str
    categories: tuple[CategoryResult, ...]
    overall: CategoryResult | None = None
    grades: Mapping[str, CategoryGrade] = field(default_factory=dict)
    adaptive: AdaptiveInfo | None = None
    transcripts: Mapping[str, tuple[Transcript, ...]] = field(default_factory=dict)
    public: bool = True
    metric: Metric | None = None

    @classmethod
    def of(
        cls,
        suite: Suite,
        categories: Sequence[CategoryResult],
        overall: CategoryResult | None = None,
        *,
        grades: Mapping[str, CategoryGrade] | None = None,
        adaptive: AdaptiveInfo | None = None,
        transcripts: Mapping[str, Sequence[Transcript]] | None = None,
    ) -> SuiteResultInput:
        """Results for `suite`, taking id, version, title and content hash from it."""
        return cls(
            suite.id,
            suite.version,
            suite.title,
            suite.content_hash,
            tuple(categories),
            overall,
            dict(grades or {}),
            adaptive,
            {k: tuple(v) for k, v in (transcripts or {}).items()},
            suite.public,
            suite.primary,
        )


def _metric(metric: Metric | None) -> dict[str, Any] | None:
    """What the suite is graded on. The `unsafe` counts and rates of its categories are the items
    on the metric's worse side: unsafe answers for hazards, wrong answers for an accuracy."""
    if metric is None:
        return None
    return {
        "name": metric.name,
        "title": metric.title or metric.name,
        "scorer": metric.scorer,
        "worse": metric.worse,
        "labels": sorted(metric.labels),
        "counted": "the score's flag"
        if not metric.labels
        else ("labels " if metric.worse == "higher" else "not labels ") + ", ".join(sorted(metric.labels)),
    }


@dataclass(frozen=True)
class JudgeInfo:
    """A judge the results rest on, with its measured agreement with human labels.

    `validation` is a judge's agreement figures on the held-out split of its labelled set (n,
    accuracy, precision, recall, f1, cohen_kappa, ...) or None when it was not measured. `model` is
    the judge model's identity for a judge that grades through one (the llm judge), written to the
    report because the verdicts are that model's; other judges' entries have no `model` field.
    """

    name: str
    version: str
    validation: Mapping[str, Any] | None = None
    model: Mapping[str, Any] | None = None


def build_report(
    model: ModelRef,
    suite_results: Mapping[str, SuiteResultInput],
    judges: Sequence[JudgeInfo],
    stats: RunStats,
    *,
    created: datetime | None = None,
    extra: Mapping[str, object] | None = None,
    references: Sequence[ReferenceInfo] = (),
) -> dict[str, Any]:
    """The report as a plain JSON-ready dict (see `schema/report.schema.json`).

    Args:
        model: the model reviewed. `sha256` and `digest` both hold `model.digest` (the manifest
            digest, or for an endpoint the digest of its base URL and model name).
        suite_results: results keyed by suite id. The contract requires at least one suite (a
            review of a private suite has no `"hazards"` entry); `validate_report` enforces that,
            `build_report` does not, so partial reports can be built.
        judges: every judge whose labels the results rest on, in order, with validation figures.
        stats: what the run cost and where its samples came from.
        created: when the report was made; now by default. A naive datetime is taken as UTC (not
            local time), so the same input gives the same report on every machine.
        extra: additional top-level fields. They may not replace a contract field (that raises
            `WeighbridgeError`), because a caller must not be able to forge e.g. the model digest.
        references: the pinned references the grades compare against, primary first.

    Raises:
        WeighbridgeError: `extra` names a reserved field, a suite result's key and id disagree, a
            grade is not on the five-point scale, or a number in a comparison is not finite.
    """
    when = created if created is not None else datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

    model_block: dict[str, Any] = {
        "name": model.name,
        "format": model.format,
        "sha256": model.digest,
        "digest": model.digest,
        "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in model.manifest.files],
    }
    if model.endpoint is not None:
        model_block["endpoint"] = {"base_url": model.endpoint.base_url, "model": model.endpoint.model}

    suites: dict[str, Any] = {}
    for key, result in suite_results.items():
        if key != result.suite_id:
            raise WeighbridgeError(
                f"suite result {result.suite_id!r} was passed under the key {key!r}",
                "key suite_results by each result's id",
            )
        overall = result.overall if result.overall is not None else pooled(result.categories)
        suites[key] = {
            "id": result.suite_id,
            "version": result.version,
            "title": result.title,
            "content_hash": result.content_hash,
            "public": result.public,
            "metric": _metric(result.metric),
            "categories": [_graded(c, result.grades.get(c.id)) for c in result.categories],
            "overall": _graded(overall, result.grades.get("overall")),
            "adaptive": _adaptive(result.adaptive),
            "transcripts": {
                category: [_plain(t) if result.public else _withheld(t) for t in examples]
                for category, examples in result.transcripts.items()
            },
        }

    report: dict[str, Any] = {
        "weighbridge_version": _weighbridge_version(),
        "created": when.isoformat(timespec="seconds"),
        "model": model_block,
        "suites": suites,
        "judges": [
            {"name": j.name, "version": j.version, "validation": dict(j.validation) if j.validation else None}
            | ({"model": dict(j.model)} if j.model is not None else {})
            for j in judges
        ],
        "timing": {
            "seconds": float(stats.seconds),
            "samples": stats.samples,
            "tokens_generated": stats.tokens_generated,
            "generated": stats.generated,
            "cache_hits": stats.cache_hits,
            "resumed": stats.resumed,
        },
        "references": [_plain(r) for r in references],
    }
    for name, value in (extra or {}).items():
        if name in _RESERVED:
            raise WeighbridgeError(
                f"extra report field {name!r} would replace a contract field",
                "give the extra field another name",
            )
        report[name] = value
    return report


def _graded(result: CategoryResult, grade: CategoryGrade | None) -> dict[str, Any]:
    """A category's JSON object: its rate fields plus the grade and the comparisons behind it."""
    entry: dict[str, Any] = asdict(result)
    if grade is None:
        entry.update(grade=None, grade_basis=None, grade_settled=False, comparisons=[])
        return entry
    for label in (grade.grade, *(c.grade for c in grade.comparisons)):
        if label is not None and label not in GRADES:
            raise WeighbridgeError(
                f"grade {label!r} of category {result.id!r} is not on the five-point scale",
                f"use one of {', '.join(GRADES)} (grading.grades.Grade.label), or None for ungraded",
            )
    comparisons = [_plain(c) for c in grade.comparisons]
    for comparison in comparisons:
        for name, value in comparison.items():
            if isinstance(value, float) and not math.isfinite(value):
                # JSON has no infinity; a reader would choke on the `Infinity` json.dumps writes.
                raise WeighbridgeError(
                    f"{name} of the comparison of {result.id!r} with {comparison['reference']!r} is {value}",
                    "compare only against a reference with samples in that category",
                )
    entry.update(
        grade=grade.grade,
        grade_basis=grade.basis,
        grade_settled=grade.settled,
        grade_range=grade.grade_range,
        items_to_settle=grade.items_to_settle,
        corrected=dict(zip(("rate", "low", "high"), grade.corrected, strict=True)) if grade.corrected else None,
        correction_note=grade.correction_note,
        comparisons=comparisons,
    )
    return entry


def _withheld(transcript: Transcript) -> dict[str, Any]:
    """A private suite's example without its text, whatever the caller passed: the prompt is the
    held-out item, and the answer usually repeats or reveals it."""
    plain: dict[str, Any] = _plain(transcript)
    return plain | {"prompt": "", "response": "", "withheld": True}


def _adaptive(info: AdaptiveInfo | None) -> dict[str, Any] | None:
    return None if info is None else _plain(info)


def _plain(value: Any) -> Any:
    """`value` as JSON data: records and mappings become dicts, tuples lists.

    Not `dataclasses.asdict`: it deep-copies mappings it does not know (a `MappingProxyType` of
    labels fails there), and a record's mapping fields may be any `Mapping`.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _weighbridge_version() -> str:
    import weighbridge

    version = getattr(weighbridge, "__version__", None)
    if isinstance(version, str) and version:
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("weighbridge")
    except PackageNotFoundError:
        return "0.0.0+unknown"


@cache
def _schema_text() -> str:
    return resources.files("weighbridge.report").joinpath("schema", "report.schema.json").read_text("utf-8")


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft 2020-12) of `report.json`, as a fresh dict."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def validate_report(report: Mapping[str, Any]) -> None:
    """Check `report` against the shipped schema.

    Raises:
        WeighbridgeError: naming the JSON path of the first problem (e.g. `$.model` for a missing
            `model.name`, with "'name' is a required property") and how many problems there are.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = list(validator.iter_errors(report))
    if not errors:
        return
    first = best_match(errors)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    raise WeighbridgeError(
        f"report is invalid at {first.json_path}: {first.message}{more}",
        "build reports with weighbridge.report.build_report, which fills every contract field",
    )


class ReportFiles(NamedTuple):
    """Where `write_reports` put the reports. `pdf` is None when it was asked not to write one."""

    json: Path
    html: Path
    pdf: Path | None


def write_reports(report: Mapping[str, Any], out_dir: Path, *, pdf: bool = True) -> ReportFiles:
    """Validate `report`, then write `report.json`, `report.html` and `report.pdf` into `out_dir`.

    Every file is rendered before anything is written, so a rendering error (or a missing PDF
    engine) writes nothing. Each file is written to a temporary file in `out_dir` and moved into
    place with `os.replace`, so a reader never sees half a file and a crash leaves the previous
    version intact.

    Args:
        report: a report as `build_report` makes it.
        out_dir: created when missing.
        pdf: also render `report.pdf` (WeasyPrint, a few seconds); False skips it.

    Returns:
        The paths written, as `ReportFiles(json, html, pdf)`.

    Raises:
        WeighbridgeError: the report does not satisfy the schema, or WeasyPrint is not usable.
    """
    from weighbridge.report.html import render_html

    validate_report(report)
    # allow_nan=False: `Infinity`/`NaN` are not JSON, and other readers would reject the file.
    json_text = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    html_text = render_html(report)
    pdf_bytes: bytes | None = None
    if pdf:
        from weighbridge.report.pdf import render_pdf

        pdf_bytes = render_pdf(report, html=html_text)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / "report.json", out_dir / "report.html", out_dir / "report.pdf" if pdf else None)
    _atomic_write(files.json, json_text.encode("utf-8"))
    _atomic_write(files.html, html_text.encode("utf-8"))
    if files.pdf is not None and pdf_bytes is not None:
        _atomic_write(files.pdf, pdf_bytes)
    return files


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
