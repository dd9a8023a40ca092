"""The human report: one self-contained HTML page rendered from a report dict.

The page needs nothing but itself: CSS is inline, charts are `data:` PNGs, there is no JavaScript
and no external resource, so it can be mailed, archived with the evidence or opened offline. It
reads the report as plain JSON data (what `report.json` holds), tolerates fields it does not know and
fields a newer or older report lacks, and escapes everything it prints.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from weighbridge.domain import CategoryResult
from weighbridge.report.plots import category_chart

__all__ = ["render_html"]

# Suites shown first, in this order; any others follow alphabetically.
_SUITE_ORDER = ("hazards",)
_SHORT_DIGEST = 12


@cache
def _environment() -> Environment:
    # StrictUndefined: the template only reads the view model built below, never the raw report, so
    # a typo in the template fails loudly in tests instead of printing an empty cell.
    return Environment(
        loader=PackageLoader("weighbridge.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The report as a standalone HTML page.

    Args:
        report: a report as `build_report` makes it or as read back from `report.json`. It is not
            validated here (`write_reports` does that): missing fields show as "—", unknown fields
            are ignored, and a category with `n == 0` shows "no samples" instead of a rate.

    Returns:
        The page as text (UTF-8 is declared in it).
    """
    return _environment().get_template("report.html.j2").render(**_view(report))


def _view(report: Mapping[str, Any]) -> dict[str, Any]:
    model = _mapping(report.get("model"))
    digest = _text(model.get("sha256") or model.get("digest"))
    endpoint = _mapping(model.get("endpoint"))
    timing = _mapping(report.get("timing"))
    suites = _mapping(report.get("suites"))
    ordered = [k for k in _SUITE_ORDER if k in suites] + sorted(k for k in suites if k not in _SUITE_ORDER)
    return {
        "model": {
            "name": _text(model.get("name"), "unnamed model"),
            "format": _text(model.get("format")),
            "digest": digest,
            "digest_short": _shorten(digest),
            "endpoint": {"base_url": _text(endpoint.get("base_url")), "model": _text(endpoint.get("model"))}
            if endpoint
            else None,
            "files": [
                {
                    "path": _text(f.get("path")),
                    "sha256": _text(f.get("sha256")),
                    "sha256_short": _shorten(_text(f.get("sha256"))),
                    "size": _size(f.get("bytes")),
                }
                for f in map(_mapping, _sequence(model.get("files")))
            ],
        },
        "created": _created(report.get("created")),
        "created_raw": _text(report.get("created")),
        "version": _text(report.get("weighbridge_version")),
        "suites": [_suite_view(key, _mapping(suites[key])) for key in ordered],
        "judges": [_judge_view(j) for j in map(_mapping, _sequence(report.get("judges")))],
        "timing": _timing_view(timing),
        "findings": [_finding_view(f) for f in map(_mapping, _sequence(report.get("findings")))],
    }


def _finding_view(finding: Mapping[str, Any]) -> dict[str, str]:
    where = " · ".join(_text(finding.get(k)) for k in ("file", "location") if finding.get(k))
    return {
        "severity": _text(finding.get("severity"), "info"),
        "kind": _text(finding.get("kind")),
        "where": where,
        "message": _text(finding.get("message")),
    }


def _judge_view(judge: Mapping[str, Any]) -> dict[str, Any]:
    v = judge.get("validation")
    view: dict[str, Any] = {"name": _text(judge.get("name")), "version": _text(judge.get("version"))}
    view["validation"] = None
    if isinstance(v, Mapping):
        view["validation"] = {
            "where": f"{_text(v.get('set'))} · {_text(v.get('split'))} · n={_text(v.get('n'))}",
            "figures": [
                (label, f"{float(v[key]):.3f}" if isinstance(v.get(key), int | float) else "–")
                for label, key in (
                    ("accuracy", "accuracy"),
                    ("precision", "precision"),
                    ("recall", "recall"),
                    ("F1", "f1"),
                    ("Cohen's κ", "cohen_kappa"),
                )
            ],
        }
    return view


def _suite_view(key: str, suite: Mapping[str, Any]) -> dict[str, Any]:
    categories = [_category(c) for c in _sequence(suite.get("categories"))]
    overall_raw = suite.get("overall")
    overall = _category(overall_raw) if isinstance(overall_raw, Mapping) else _pool(categories)
    title = _text(suite.get("title"), key)
    chart = category_chart(categories, "Unsafe rate per category, with exact 95% intervals", overall=overall)
    return {
        "id": key,
        "title": title,
        "version": _text(suite.get("version")),
        "content_hash": _text(suite.get("content_hash")),
        "content_hash_short": _shorten(_text(suite.get("content_hash"))),
        "rows": [_row(c) for c in categories],
        "overall": _row(overall),
        "chart_src": "data:image/png;base64," + base64.b64encode(chart).decode("ascii"),
        "chart_alt": f"Bar chart of the unsafe rate with its 95% interval for each of {len(categories)} categories",
    }


def _row(c: CategoryResult) -> dict[str, Any]:
    empty = c.n <= 0
    return {
        "id": c.id,
        "name": c.name,
        "n": c.n,
        "unsafe": c.unsafe,
        "empty": empty,
        "rate": "no samples" if empty else _pct(c.unsafe_rate),
        "ci": "—" if empty else f"{_pct(c.ci_low)} – {_pct(c.ci_high)}",
        # Positions for the inline interval bar in the table, in percent of its width.
        "bar": {
            "low": round(100 * _clamp(c.ci_low), 2),
            "width": round(100 * max(0.0, _clamp(c.ci_high) - _clamp(c.ci_low)), 2),
            "rate": round(100 * _clamp(c.unsafe_rate), 2),
        },
    }


def _timing_view(timing: Mapping[str, Any]) -> dict[str, Any]:
    generated = _int(timing.get("generated"))
    cache_hits = _int(timing.get("cache_hits"))
    resumed = _int(timing.get("resumed"))
    parts = [
        ("generated", "Generated", generated),
        ("cache", "Cache hits", cache_hits),
        ("resumed", "Resumed", resumed),
    ]
    known = [(key, label, value) for key, label, value in parts if value is not None]
    total = sum(value for _, _, value in known if value is not None)
    seconds = timing.get("seconds")
    return {
        "seconds": _duration(seconds),
        "samples": _count(timing.get("samples")),
        "tokens": _count(timing.get("tokens_generated")),
        "sources": [
            {
                "key": key,
                "label": label,
                "value": _count(value),
                "share": round(100 * value / total, 2) if total and value is not None else 0.0,
            }
            for key, label, value in known
        ],
        "has_sources": total > 0,
    }


# --- tolerant readers: a report from an older or newer weighbridge must still render -------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _text(value: object, default: str = "—") -> str:
    return default if value is None or value == "" else str(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _category(value: object) -> CategoryResult:
    c = _mapping(value)
    n = max(_int(c.get("n")) or 0, 0)
    unsafe = min(max(_int(c.get("unsafe")) or 0, 0), n)
    rate = _float(c.get("unsafe_rate"), unsafe / n if n else 0.0)
    return CategoryResult(
        id=_text(c.get("id"), "?"),
        name=_text(c.get("name"), _text(c.get("id"), "unnamed category")),
        n=n,
        unsafe=unsafe,
        unsafe_rate=rate,
        ci_low=_float(c.get("ci_low"), 0.0),
        ci_high=_float(c.get("ci_high"), 1.0),
    )


def _pool(categories: Sequence[CategoryResult]) -> CategoryResult:
    from weighbridge.report.builder import pooled

    return pooled(categories)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _shorten(digest: str) -> str:
    return digest if len(digest) <= _SHORT_DIGEST + 1 else digest[:_SHORT_DIGEST] + "…"


def _count(value: object) -> str:
    number = _int(value)
    return "—" if number is None else f"{number:,}"


def _duration(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _size(value: object) -> str:
    number = _int(value)
    if number is None:
        return "—"
    if number < 1024:
        return f"{number:,} B"
    size = number / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _created(value: object) -> str:
    if not isinstance(value, str):
        return "—"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.strftime("%Y-%m-%d %H:%M:%S")
    offset = parsed.utcoffset()
    zone = "UTC" if offset is not None and offset.total_seconds() == 0 else parsed.strftime("UTC%z")
    return f"{parsed.strftime('%Y-%m-%d %H:%M:%S')} {zone}"
