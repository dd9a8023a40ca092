"""Reports of a review: the machine-readable `report.json` and a self-contained `report.html`.

Typical use::

    report = build_report(model, {"hazards": SuiteResultInput.of(suite, categories)}, judges, stats)
    json_path, html_path = write_reports(report, out_dir)

`report.json` follows the contract in `schema/report.schema.json` (draft 2020-12): fields may be
added, never removed. `validate_report` checks it; `write_reports` validates before writing.
"""

from weighbridge.report.builder import (
    JudgeInfo,
    SuiteResultInput,
    build_report,
    load_schema,
    pooled,
    validate_report,
    write_reports,
)
from weighbridge.report.html import render_html
from weighbridge.report.plots import category_chart

__all__ = [
    "JudgeInfo",
    "SuiteResultInput",
    "build_report",
    "category_chart",
    "load_schema",
    "pooled",
    "render_html",
    "validate_report",
    "write_reports",
]
