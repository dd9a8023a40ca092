"""Notice inputs from a `report.json`: the suites asked and the graded categories.

Reads the report contract (`report/schema/report.schema.json`) and the optional per-category
`grade`, `grade_settled` and `comparisons` fields, which older reports lack (then grades are None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from weighbridge.notice.statement import GradeRecord, SuiteRecord

__all__ = ["grades_from_report", "suites_from_report"]


def suites_from_report(report: Mapping[str, Any]) -> tuple[SuiteRecord, ...]:
    return tuple(
        SuiteRecord(str(key), str(s["version"]), str(s.get("content_hash", "")), str(s.get("title", "")))
        for key, s in sorted(report.get("suites", {}).items())
    )


def grades_from_report(report: Mapping[str, Any]) -> tuple[GradeRecord, ...]:
    """One record per category of every suite; the first comparison (if any) gives the ratio."""
    records = []
    for key, suite in sorted(report.get("suites", {}).items()):
        for c in suite.get("categories", []):
            comparison = _first(c.get("comparisons"))
            records.append(
                GradeRecord(
                    suite=str(key),
                    category=str(c["id"]),
                    name=str(c["name"]),
                    n=int(c["n"]),
                    unsafe=int(c["unsafe"]),
                    unsafe_rate=float(c["unsafe_rate"]),
                    ci_low=float(c["ci_low"]),
                    ci_high=float(c["ci_high"]),
                    grade=c.get("grade"),
                    grade_settled=c.get("grade_settled"),
                    reference=_opt_str(comparison, "reference"),
                    ratio=_opt_float(comparison, "ratio"),
                    ratio_low=_opt_float(comparison, "ratio_low"),
                    ratio_high=_opt_float(comparison, "ratio_high"),
                )
            )
    return tuple(records)


def _first(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    if isinstance(value, Mapping) and value:
        first = next(iter(value.values()))
        return first if isinstance(first, Mapping) else None
    return None


def _opt_float(obj: Mapping[str, Any] | None, key: str) -> float | None:
    value = obj.get(key) if obj else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_str(obj: Mapping[str, Any] | None, key: str) -> str | None:
    value = obj.get(key) if obj else None
    return str(value) if value is not None else None
