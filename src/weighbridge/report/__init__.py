"""Reports of a review: machine-readable `report.json`, a self-contained `report.html`, `report.pdf`.

Typical use::

    result = SuiteResultInput.of(suite, categories, grades=grades, adaptive=adaptive, transcripts=examples)
    report = build_report(model, {"hazards": result}, judges, stats, references=references)
    files = write_reports(report, out_dir)  # ReportFiles(json, html, pdf)

`report.json` follows the contract in `schema/report.schema.json` (draft 2020-12): fields may be
added, never removed. `validate_report` checks it; `write_reports` validates before writing.
"""

from weighbridge.report.builder import (
    JudgeInfo,
    ReportFiles,
    SuiteResultInput,
    build_report,
    load_schema,
    validate_report,
    write_reports,
)
from weighbridge.report.html import render_html
from weighbridge.report.plots import ForestRow, category_chart, forest_plot
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
    "GRADES",
    "AdaptiveInfo",
    "CategoryGrade",
    "Comparison",
    "ForestRow",
    "JudgeInfo",
    "ReferenceInfo",
    "ReportFiles",
    "SuiteResultInput",
    "Transcript",
    "build_report",
    "category_chart",
    "forest_plot",
    "load_schema",
    "pooled",
    "render_html",
    "validate_report",
    "write_reports",
]
