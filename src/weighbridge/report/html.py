"""The human report: one self-contained HTML page rendered from a report dict.

The page needs nothing but itself: CSS is inline, charts are `data:` PNGs, there is no JavaScript
and no external resource, so it can be mailed, archived with the evidence or opened offline. It
reads the report as plain JSON data (what `report.json` holds), tolerates fields it does not know and
fields a newer or older report lacks, and escapes everything it prints — transcripts hold untrusted
model output, which must stay text. The same page, through its print stylesheet, is `report.pdf`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from weighbridge.domain import CategoryResult
from weighbridge.report.plots import ForestRow, category_chart, forest_plot
from weighbridge.report.records import GRADES, pooled

__all__ = ["render_html"]

# Suites shown first, in this order; any others follow alphabetically.
_SUITE_ORDER = ("hazards",)
_SHORT_DIGEST = 12
# A transcript's prompt or response is cut after this many characters in the page (report.json
# keeps it whole): one runaway generation must not turn the drill-down into hundreds of pages.
_TRANSCRIPT_CHARS = 2400


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
    references = [_reference_view(r) for r in map(_mapping, _sequence(report.get("references")))]
    model_name = _text(model.get("name"), "unnamed model")
    return {
        "model": {
            "name": model_name,
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
        "suites": [
            _suite_view(key, _mapping(suites[key]), [r["name"] for r in references], model_name) for key in ordered
        ],
        "references": references,
        "judges": [_judge_view(j) for j in map(_mapping, _sequence(report.get("judges")))],
        "primary_judge": _primary_judge_view(report.get("primary_judge")),
        "timing": _timing_view(timing),
        "findings": [_finding_view(f) for f in map(_mapping, _sequence(report.get("findings")))],
        "repro": _reproducibility_view(_mapping(report.get("reproducibility"))),
        "adjudication": _adjudication_view(report.get("adjudication")),
    }


def _finding_view(finding: Mapping[str, Any]) -> dict[str, str]:
    where = " · ".join(_text(finding.get(k)) for k in ("file", "location") if finding.get(k))
    return {
        "severity": _text(finding.get("severity"), "info"),
        "kind": _text(finding.get("kind")),
        "where": where,
        "message": _text(finding.get("message")),
    }


_AGREEMENT = (("accuracy", "accuracy"), ("precision", "precision"), ("recall", "recall"), ("F1", "f1"),
              ("Cohen's κ", "cohen_kappa"))  # fmt: skip


def _figures(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Each agreement figure, with its 95 % interval when the report has one."""
    intervals = _mapping(v.get("intervals"))
    out = []
    for label, key in _AGREEMENT:
        value = v.get(key)
        text = f"{float(value):.3f}" if isinstance(value, int | float) else "–"
        ci = _mapping(intervals.get(key))
        if isinstance(ci.get("low"), int | float) and isinstance(ci.get("high"), int | float):
            text += f" [{float(ci['low']):.2f}, {float(ci['high']):.2f}]"
        out.append((label, text))
    return out


def _primary_judge_view(primary: object) -> dict[str, Any] | None:
    """The unvalidated-judge warning's content; None when the primary judge is validated or the
    report predates `primary_judge` (nothing to warn about that the report can know)."""
    if not isinstance(primary, Mapping) or primary.get("validated") is not False:
        return None
    return {
        "name": _text(primary.get("name")),
        "version": _text(primary.get("version")),
        "model": _judge_model_text(primary.get("model")),
        "unparsed": _int(primary.get("unparsed")) or 0,
        "note": _text(primary.get("note")),
    }


def _judge_model_text(model: object) -> str:
    """A judge model as one line: 'Qwen2.5-7B (sha256 1a2b3c4d5e6f…)' or 'Llama-Guard-3-8B at URL'."""
    if not isinstance(model, Mapping):
        return ""
    if model.get("format") == "endpoint":
        return f"{_text(model.get('model'))} at {_text(model.get('base_url'))}"
    return f"{_text(model.get('name'))} (sha256 {_shorten(_text(model.get('sha256')))})"


def _judge_view(judge: Mapping[str, Any]) -> dict[str, Any]:
    v = judge.get("validation")
    view: dict[str, Any] = {"name": _text(judge.get("name")), "version": _text(judge.get("version"))}
    view["model"] = _judge_model_text(judge.get("model"))
    view["validation"] = None
    if isinstance(v, Mapping):
        view["validation"] = {
            "where": f"{_text(v.get('set'))} · {_text(v.get('split'))} · n={_text(v.get('n'))}",
            "figures": _figures(v),
            "by_origin": [
                (f"{name} (n={_text(_mapping(m).get('n'))})", _figures(_mapping(m)))
                for name, m in _mapping(v.get("by_origin")).items()
            ],
        }
    return view


def _suite_view(key: str, suite: Mapping[str, Any], known_references: Sequence[str], model_name: str) -> dict[str, Any]:
    raw_categories = [_mapping(c) for c in _sequence(suite.get("categories"))]
    categories = [_category(c) for c in raw_categories]
    overall_raw = suite.get("overall")
    overall = _category(overall_raw) if isinstance(overall_raw, Mapping) else _pool(categories)
    raw_overall = _mapping(overall_raw)
    title = _text(suite.get("title"), key)
    raw_rows = [*zip(raw_categories, categories, strict=True), (raw_overall, overall)]
    # Every reference that appears anywhere, those listed at the top level first.
    names = list(known_references)
    for raw, _ in raw_rows:
        for comparison in map(_mapping, _sequence(raw.get("comparisons"))):
            name = _text(comparison.get("reference"), "")
            if name and name not in names:
                names.append(name)
    # Report v1 writes `comparisons` on every category; an older report.json has none and keeps
    # the bar chart it was made with.
    v1 = any("comparisons" in raw for raw, _ in raw_rows)
    grade_rows = [_grade_row(raw, c, names, overall=i == len(raw_rows) - 1) for i, (raw, c) in enumerate(raw_rows)]
    if v1:
        chart = forest_plot(
            [
                ForestRow(
                    "Overall" if row["overall"] else c.name,
                    c,
                    {ref["name"]: ref["result"] for ref in row["references"] if ref is not None},
                    row["grade"],
                    overall=row["overall"],
                )
                for row, (_, c) in zip(grade_rows, raw_rows, strict=True)
            ],
            names,
            "Unsafe rate per category: model against references, with exact 95% intervals"
            if names
            else "Unsafe rate per category, with exact 95% intervals",
            model_label=model_name,
        )
        alt = (
            f"Forest plot of the unsafe rate with its 95% interval for {len(categories)} categories and overall: "
            f"{model_name}" + (f" against {', '.join(names)}" if names else "")
        )
    else:
        chart = category_chart(categories, "Unsafe rate per category, with exact 95% intervals", overall=overall)
        alt = f"Bar chart of the unsafe rate with its 95% interval for each of {len(categories)} categories"
    return {
        "id": key,
        "title": title,
        "version": _text(suite.get("version")),
        "content_hash": _text(suite.get("content_hash")),
        "content_hash_short": _shorten(_text(suite.get("content_hash"))),
        "private": suite.get("public") is False,
        "metric": _mapping(suite.get("metric")) or None,
        "rows": [_row(c) for c in categories],
        "overall": _row(overall),
        "v1": v1,
        "graded": any(row["basis"] != "—" for row in grade_rows),
        "reference_names": names,
        "grade_rows": grade_rows,
        "chart_kind": "forest" if v1 else "bars",
        "chart_src": "data:image/png;base64," + base64.b64encode(chart).decode("ascii"),
        "chart_alt": alt,
        "adaptive": _adaptive_view(_mapping(suite.get("adaptive")), categories) if suite.get("adaptive") else None,
        "transcripts": _transcripts_view(_mapping(suite.get("transcripts")), categories),
    }


def _grade_row(raw: Mapping[str, Any], c: CategoryResult, names: Sequence[str], *, overall: bool) -> dict[str, Any]:
    by_name = {_text(_mapping(x).get("reference"), ""): _mapping(x) for x in _sequence(raw.get("comparisons"))}
    grade = _grade_label(raw.get("grade"))
    basis = raw.get("grade_basis")
    return {
        "id": c.id,
        "name": "Overall (all categories pooled)" if overall else c.name,
        "overall": overall,
        "n": c.n,
        "rate": "no samples" if c.n <= 0 else _pct(c.unsafe_rate),
        "ci": "—" if c.n <= 0 else f"{100 * c.ci_low:.1f}–{_pct(c.ci_high)}",
        "grade": grade,
        "chip": _chip(grade),
        "settled": raw.get("grade_settled") is True,
        # What the evidence supports ("Poor – Good" when unsettled); the chip colour is the worst end.
        "range": _text(raw.get("grade_range"), grade or ""),
        "to_settle": raw.get("items_to_settle") if isinstance(raw.get("items_to_settle"), int) else None,
        "corrected": _corrected_text(_mapping(raw.get("corrected"))),
        "correction_note": _text(raw.get("correction_note"), ""),
        "basis": _basis_text(basis),
        "references": [_comparison_view(by_name[name]) if name in by_name else None for name in names],
    }


def _corrected_text(corrected: Mapping[str, Any]) -> str | None:
    """The judge-corrected rate and interval, as the grade table shows it beside the raw one."""
    values = [corrected.get(k) for k in ("rate", "low", "high")]
    if not all(isinstance(v, int | float) for v in values):
        return None
    rate, low, high = (float(v) for v in values)  # type: ignore[arg-type]
    return f"{_pct(rate)} ({100 * low:.1f}–{_pct(high)})"


def _comparison_view(comparison: Mapping[str, Any]) -> dict[str, Any]:
    result = _category({**comparison, "id": comparison.get("reference"), "name": comparison.get("reference")})
    grade = _grade_label(comparison.get("grade"))
    ratio, low, high = (_float(comparison.get(k), -1.0) for k in ("ratio", "ratio_low", "ratio_high"))
    return {
        "name": result.name,
        "result": result,
        "rate": "no samples" if result.n <= 0 else _pct(result.unsafe_rate),
        # Compact interval forms ("47.2–75.3%", "0.03–0.30"): three references must fit the page.
        "ci": "—" if result.n <= 0 else f"{100 * result.ci_low:.1f}–{_pct(result.ci_high)}",
        "n": result.n,
        "ratio": "—" if ratio < 0 else _ratio(ratio),
        "ratio_ci": "—" if low < 0 or high < 0 else f"{_ratio(low).rstrip('×')}–{_ratio(high).rstrip('×')}",
        "grade": grade,
        "chip": _chip(grade),
        "settled": comparison.get("settled") is True,
    }


def _adaptive_view(adaptive: Mapping[str, Any], categories: Sequence[CategoryResult]) -> dict[str, Any]:
    planned = _int(adaptive.get("planned"))
    asked = _int(adaptive.get("asked"))
    saved = _int(adaptive.get("saved"))
    stopped = _mapping(adaptive.get("stopped"))
    planned_by = _mapping(adaptive.get("planned_by_category"))
    rows = []
    for c in categories:
        plan = _int(planned_by.get(c.id))
        stop = _int(stopped.get(c.id))
        rows.append(
            {
                "name": c.name,
                "planned": _count(plan),
                "asked": _count(c.n),
                "saved": _count(plan - c.n) if plan is not None else "—",
                "stopped": f"stopped at n = {stop}" if stop is not None else "sampled to the plan",
                "early": stop is not None,
            }
        )
    confidence = adaptive.get("confidence")
    return {
        "confidence": f"{100 * confidence:g}%" if isinstance(confidence, float | int) else "—",
        "planned": _count(planned),
        "asked": _count(asked),
        "saved": _count(saved),
        "saved_share": f"{100 * saved / planned:.0f}%" if planned and saved is not None else "—",
        "stopped_count": len(stopped),
        "rows": rows,
    }


def _transcripts_view(transcripts: Mapping[str, Any], categories: Sequence[CategoryResult]) -> list[dict[str, Any]]:
    names = {c.id: c.name for c in categories}
    order = [c.id for c in categories if c.id in transcripts] + sorted(k for k in transcripts if k not in names)
    groups = []
    for cid in order:
        examples = []
        for t in map(_mapping, _sequence(transcripts[cid])):
            prompt, prompt_cut = _clip(_text(t.get("prompt"), ""))
            response, response_cut = _clip(_text(t.get("response"), ""))
            examples.append(
                {
                    "item_id": _text(t.get("item_id")),
                    "unsafe": t.get("unsafe") is True,
                    "labels": [(_text(k), _text(v)) for k, v in _mapping(t.get("labels")).items()],
                    "prompt": prompt,
                    "prompt_cut": prompt_cut,
                    "response": response,
                    "response_cut": response_cut,
                    "withheld": t.get("withheld") is True,
                }
            )
        if examples:
            groups.append(
                {
                    "id": cid,
                    "name": names.get(cid, cid),
                    "examples": examples,
                    "unsafe": sum(e["unsafe"] is True for e in examples),
                }
            )
    return groups


def _reference_view(reference: Mapping[str, Any]) -> dict[str, Any]:
    digest = _text(reference.get("digest"))
    suite_hash = _text(reference.get("suite_hash"))
    params = _mapping(reference.get("params"))
    return {
        "name": _text(reference.get("name"), "unnamed reference"),
        "title": _text(reference.get("title"), ""),
        "digest": digest,
        "digest_short": _shorten(digest),
        "format": _text(reference.get("format")),
        "params": [(str(k), json.dumps(v, sort_keys=True, ensure_ascii=False)) for k, v in sorted(params.items())],
        "suite_version": _text(reference.get("suite_version")),
        "suite_hash": suite_hash,
        "suite_hash_short": _shorten(suite_hash),
        "run_id": _text(reference.get("run_id")),
        "run_id_short": _shorten(_text(reference.get("run_id"))),
        "reused": reference.get("reused") is True,
    }


def _grade_label(value: object) -> str | None:
    return value if isinstance(value, str) and value in GRADES else None


def _chip(grade: str | None) -> str:
    return "grade-" + (grade.lower().replace(" ", "-") if grade else "none")


def _basis_text(basis: object) -> str:
    if not isinstance(basis, str) or not basis:
        return "—"
    return basis.removeprefix("reference:")


def _ratio(x: float) -> str:
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×" if x < 100 else f"{x:.0f}×"


def _clip(text: str) -> tuple[str, int]:
    """`text` cut to the page's limit, and how many characters were left out."""
    if len(text) <= _TRANSCRIPT_CHARS:
        return text, 0
    return text[:_TRANSCRIPT_CHARS], len(text) - _TRANSCRIPT_CHARS


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


def _reproducibility_view(repro: Mapping[str, Any]) -> dict[str, Any]:
    def environment(e: Mapping[str, Any]) -> dict[str, str]:
        target, runtime, host = _mapping(e.get("target")), _mapping(e.get("runtime")), _mapping(e.get("host"))
        build = _mapping(runtime.get("build")) or _mapping(target.get("build"))
        return {
            "build": " ".join(_text(build.get(k), "") for k in ("backend", "version", "variant")).strip() or "—",
            "features": _text(build.get("features")),
            "cpu": _text(host.get("cpu") or host.get("machine")),
            "isa": " ".join(str(f) for f in _sequence(host.get("isa"))) or "—",
            "threads": _text(runtime.get("n_threads")),
            "batch_size": _text(runtime.get("batch_size")),
            "seed": _text(e.get("seed")),
        }

    def share(same: object, n: object) -> str:
        s, t = _int(same), _int(n)
        return f"{s}/{t} ({100 * s / t:.1f} %)" if s is not None and t else "—"

    checks = []
    for c in map(_mapping, _sequence(repro.get("checks"))):
        env = environment(_mapping(c.get("environment")))
        n = c.get("sample_size")
        checks.append(
            {
                "created": _created(c.get("created")),
                "size": _count(n),
                "where": f"{env['cpu']} · {env['build']} · batch size {env['batch_size']}",
                "changed": ", ".join(str(x) for x in _sequence(c.get("changed"))) or "nothing recorded",
                "answers": share(c.get("answers_same"), n),
                "verdicts": share(c.get("verdicts_same"), n),
                "rejudged": share(c.get("rejudged_same"), n),
                "moved": ", ".join(str(x) for x in _sequence(c.get("grades_moved"))) or "none",
            }
        )
    return {"environments": [environment(_mapping(e)) for e in _sequence(repro.get("environments"))], "checks": checks}


# Adjudicated judgements listed in the page (report.json keeps them all).
_ADJUDICATIONS_SHOWN = 50


def _adjudication_view(block: object) -> dict[str, Any] | None:
    """'k of n judgements adjudicated' and the labels behind it; None for a report made before
    adjudication existed (nothing can be said about it)."""
    if not isinstance(block, Mapping):
        return None
    entries = [_mapping(e) for e in _sequence(block.get("entries"))]
    confidence = [_float(e.get("judge_confidence"), -1.0) for e in entries]
    return {
        "adjudicated": _int(block.get("adjudicated")) or 0,
        "queued": _int(block.get("queued")) or 0,
        "threshold": _text(block.get("threshold")),
        "unsafe_by_judge": _text(block.get("unsafe_by_judge")),
        "unsafe_after": _text(block.get("unsafe_after")),
        "changed": _int(block.get("changed")) or 0,
        "entries": [
            {
                "item": _text(e.get("item_id")),
                "category": _text(e.get("category")),
                "judge": f"{_text(e.get('judge_label'))}" + (f" ({c:.2f})" if c >= 0 else ""),
                "label": _text(e.get("label")),
                "reviewer": _text(e.get("reviewer")),
                "seq": _text(e.get("seq")),
                "note": _text(e.get("note"), ""),
            }
            for e, c in zip(entries[:_ADJUDICATIONS_SHOWN], confidence, strict=False)
        ],
        "more": max(0, len(entries) - _ADJUDICATIONS_SHOWN),
        "rejected": [
            f"ledger entry {_text(r.get('seq'))} by {_text(r.get('reviewer'))}: {_text(r.get('reason'))}"
            for r in map(_mapping, _sequence(block.get("rejected")))
        ],
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
