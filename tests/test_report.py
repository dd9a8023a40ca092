"""Report layer: report.json contract, HTML page, chart, atomic writes, and the page in a real browser.

Every report here is built from hand-made results for the 13 hazard categories: no model is needed.
"""

from __future__ import annotations

import copy
import json
import re
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import beta

from tests.browser import open_in_chromium
from weighbridge.domain import CategoryResult, EndpointSpec, Manifest, ModelFile, ModelRef, RunStats
from weighbridge.errors import WeighbridgeError
from weighbridge.report import (
    JudgeInfo,
    SuiteResultInput,
    build_report,
    category_chart,
    render_html,
    validate_report,
    write_reports,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CREATED = datetime(2025, 6, 1, 12, 30, 0, tzinfo=UTC)

# (id, name, n, unsafe): the 13 standardized hazard categories with varied, realistic counts.
HAZARDS: list[tuple[str, str, int, int]] = [
    ("vcr", "Violent crimes", 50, 3),
    ("ncr", "Non-violent crimes", 50, 9),
    ("src", "Sex-related crimes", 40, 1),
    ("cse", "Child sexual exploitation", 40, 0),
    ("iwp", "Indiscriminate weapons (CBRNE)", 60, 4),
    ("dfm", "Defamation", 30, 11),
    ("spc", "Specialized advice", 30, 17),
    ("prv", "Privacy", 45, 6),
    ("ipv", "Intellectual property", 45, 20),
    ("elc", "Elections", 30, 5),
    ("hte", "Hate", 50, 2),
    ("ssh", "Suicide & self-harm", 50, 1),
    ("sxc", "Sexual content", 35, 8),
]


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return low, high


def category(cid: str, name: str, n: int, unsafe: int) -> CategoryResult:
    low, high = clopper_pearson(unsafe, n)
    return CategoryResult(cid, name, n, unsafe, unsafe / n if n else 0.0, low, high)


def categories() -> tuple[CategoryResult, ...]:
    return tuple(category(*row) for row in HAZARDS)


def gguf_model(name: str = "tiny-llama-1.1b-chat.Q4_K_M") -> ModelRef:
    files = (
        ModelFile("tiny-llama-1.1b-chat.Q4_K_M.gguf", "ab" * 32, 668_788_096),
        ModelFile("README.md", "cd" * 32, 4_211),
    )
    return ModelRef(name=name, format="gguf", manifest=Manifest(files), path="/models/tiny")


def make_report(
    model: ModelRef | None = None, cats: tuple[CategoryResult, ...] | None = None, **kwargs: Any
) -> dict[str, Any]:
    suite = SuiteResultInput(
        suite_id="hazards",
        version="1.0.0",
        title="Hazards: 13 standardized harm categories",
        content_hash="ef" * 32,
        categories=categories() if cats is None else cats,
    )
    return build_report(
        model or gguf_model(),
        {"hazards": suite},
        [
            JudgeInfo(
                "refusal",
                "1.2.0",
                {
                    "set": "refusal",
                    "split": "heldout",
                    "n": 47,
                    "accuracy": 0.872,
                    "precision": 1.0,
                    "recall": 0.812,
                    "f1": 0.897,
                    "cohen_kappa": 0.734,
                },
            ),
            JudgeInfo("harm-keywords", "0.3.1"),
        ],
        RunStats(seconds=734.25, samples=585, tokens_generated=61_032, generated=412, cache_hits=150, resumed=23),
        created=CREATED,
        **kwargs,
    )


# --- report.json ------------------------------------------------------------------------------------


def test_report_has_contract_fields_and_validates() -> None:
    report = make_report()
    validate_report(report)
    assert report["weighbridge_version"]
    assert report["created"] == "2025-06-01T12:30:00+00:00"
    model = report["model"]
    assert model["format"] == "gguf"
    assert model["sha256"] == model["digest"] == gguf_model().digest
    assert [f["path"] for f in model["files"]] == ["tiny-llama-1.1b-chat.Q4_K_M.gguf", "README.md"]
    hazards = report["suites"]["hazards"]
    assert hazards["version"] == "1.0.0" and hazards["content_hash"] == "ef" * 32
    assert len(hazards["categories"]) == 13
    assert set(hazards["categories"][0]) >= {"id", "name", "n", "unsafe", "unsafe_rate", "ci_low", "ci_high"}
    assert [(j["name"], j["version"]) for j in report["judges"]] == [("refusal", "1.2.0"), ("harm-keywords", "0.3.1")]
    assert report["judges"][0]["validation"]["accuracy"] == 0.872
    assert report["judges"][1]["validation"] is None
    assert report["timing"] == {
        "seconds": 734.25,
        "samples": 585,
        "tokens_generated": 61_032,
        "generated": 412,
        "cache_hits": 150,
        "resumed": 23,
    }
    # The report is plain JSON data.
    assert json.loads(json.dumps(report)) == report


def test_overall_is_pooled_when_not_given() -> None:
    overall = make_report()["suites"]["hazards"]["overall"]
    n = sum(row[2] for row in HAZARDS)
    unsafe = sum(row[3] for row in HAZARDS)
    low, high = clopper_pearson(unsafe, n)
    assert (overall["n"], overall["unsafe"]) == (n, unsafe)
    assert overall["unsafe_rate"] == pytest.approx(unsafe / n)
    assert (overall["ci_low"], overall["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def test_endpoint_model_block() -> None:
    endpoint = EndpointSpec(base_url="http://127.0.0.1:8080/v1", model="qwen2.5-0.5b-instruct")
    model = ModelRef(name="qwen via llama-server", format="endpoint", manifest=Manifest(()), endpoint=endpoint)
    report = make_report(model)
    validate_report(report)
    assert report["model"]["endpoint"] == {"base_url": "http://127.0.0.1:8080/v1", "model": "qwen2.5-0.5b-instruct"}
    assert report["model"]["files"] == []
    assert report["model"]["sha256"] == model.digest


def test_naive_created_is_taken_as_utc() -> None:
    report = build_report(
        gguf_model(),
        {},
        [],
        RunStats(1.0, 0, 0, 0, 0, 0),
        created=datetime(2025, 1, 2, 3, 4, 5),
    )
    assert report["created"] == "2025-01-02T03:04:05+00:00"


def test_extra_fields_are_added_but_cannot_replace_contract_fields() -> None:
    report = make_report(extra={"review_id": "R-2025-0042"})
    assert report["review_id"] == "R-2025-0042"
    validate_report(report)
    with pytest.raises(WeighbridgeError, match="model"):
        make_report(extra={"model": {"name": "forged"}})


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ((), "timing"),
        ((), "weighbridge_version"),
        (("model",), "sha256"),
        (("model",), "name"),
        (("suites", "hazards"), "transcripts"),
        (("suites", "hazards"), "version"),
        (("suites", "hazards", "categories", 4), "ci_high"),
        (("timing",), "tokens_generated"),
    ],
)
def test_validation_names_the_missing_field(path: tuple[str | int, ...], field: str) -> None:
    report = copy.deepcopy(make_report())
    parent: Any = report
    for key in path:
        parent = parent[key]
    del parent[field]
    with pytest.raises(WeighbridgeError) as caught:
        validate_report(report)
    message = str(caught.value)
    assert repr(field) in message
    expected_path = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)
    assert f"at {expected_path}:" in message


def test_validation_rejects_wrong_values() -> None:
    report = make_report()
    report["model"]["format"] = "onnx"
    with pytest.raises(WeighbridgeError, match=r"\$\.model\.format"):
        validate_report(report)
    report = make_report()
    report["suites"]["hazards"]["categories"][0]["unsafe_rate"] = 1.5
    with pytest.raises(WeighbridgeError, match=r"categories\[0\]\.unsafe_rate"):
        validate_report(report)
    report = make_report()
    report["created"] = "yesterday"
    with pytest.raises(WeighbridgeError, match=r"\$\.created"):
        validate_report(report)


def test_additional_properties_are_allowed() -> None:
    report = make_report()
    report["model"]["licence"] = "apache-2.0"
    report["suites"]["hazards"]["categories"][0]["grade"] = "Good"
    report["suites"]["jailbreak"] = {"version": "0.1", "categories": [], "adaptive": None, "transcripts": {}}
    validate_report(report)


# --- HTML -----------------------------------------------------------------------------------------


def test_html_lists_every_category_and_embeds_the_chart() -> None:
    report = make_report()
    page = render_html(report)
    for _, name, _, _ in HAZARDS:
        assert f">{name.replace('&', '&amp;')}<" in page
    assert page.count('<tr class="category') == 13
    assert "Overall (all categories pooled)" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1
    import base64

    assert base64.b64decode(images[0]).startswith(PNG_SIGNATURE)
    # Header facts, with the digest shortened and the full one in a title attribute.
    digest = report["model"]["sha256"]
    assert f'title="{digest}"' in page and f">{digest[:12]}…<" in page
    assert "Clopper–Pearson" in page and "primary judge" in page
    assert "refusal" in page and "1.2.0" in page
    assert "12.2 min" in page or "12 min 14 s" in page
    # Self-contained: no external resources, no scripts.
    assert "<script" not in page
    assert not re.search(r'(?:src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page


def test_html_shows_judge_agreement_per_origin_of_the_labelled_rows() -> None:
    report = make_report()
    report["judges"][0]["validation"]["by_origin"] = {
        "pyrit 1.1.0": {"n": 20, "accuracy": 0.75, "precision": 0.8, "recall": 0.7, "f1": 0.74, "cohen_kappa": 0.5},
        "weighbridge": {"n": 27, "accuracy": 0.963, "precision": 0.0, "recall": 0.0, "f1": 0.0, "cohen_kappa": 0.0},
    }
    validate_report(report)
    page = render_html(report)
    assert "rows from pyrit 1.1.0 (n=20): accuracy 0.750" in page
    assert "rows from weighbridge (n=27): accuracy 0.963" in page


def test_html_escapes_model_name() -> None:
    page = render_html(make_report(gguf_model('evil<script>alert("x")</script>&co')))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;co" in page


def test_html_tolerates_unknown_fields_and_empty_categories() -> None:
    cats = (*categories()[:12], category("sxc", "Sexual content", 0, 0))
    report = make_report(cats=cats, extra={"future_field": {"nested": [1, 2, 3]}})
    report["suites"]["hazards"]["categories"][1]["grade"] = "Fair"
    report["suites"]["hazards"]["overall"] = None
    report["suites"]["dual_use"] = {"version": "0.1", "categories": [], "extra": True}
    page = render_html(report)
    assert "no samples" in page
    assert 'id="suite-dual_use"' in page


def test_html_renders_a_sparse_report() -> None:
    page = render_html({"model": {"name": "bare"}, "suites": {"hazards": {"categories": [{"name": "Hate", "n": 0}]}}})
    assert "bare" in page and "Hate" in page


# --- chart ------------------------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chart_is_a_deterministic_png() -> None:
    first = category_chart(categories(), "Unsafe rate per category")
    second = category_chart(categories(), "Unsafe rate per category")
    assert first == second
    width, height = png_size(first)
    assert width > 600 and height > 300
    assert b"Software" not in first and b"matplotlib" not in first.lower()
    assert category_chart(categories(), "Another title") != first


def test_chart_handles_empty_and_extreme_categories() -> None:
    cats = (category("a", "None", 0, 0), category("b", "All", 10, 10), category("c", "Zero", 10, 0))
    png_size(category_chart(cats, "edge cases", overall=category("o", "Overall", 20, 10)))
    png_size(category_chart((), "no categories"))


# --- writing --------------------------------------------------------------------------------------


def test_write_reports_is_atomic_and_sorted(tmp_path: Path) -> None:
    out = tmp_path / "run-1"
    report = make_report(gguf_model("modèle-ünïcode"))
    json_path, html_path, pdf_path = write_reports(report, out, pdf=False)
    assert (json_path, html_path, pdf_path) == (out / "report.json", out / "report.html", None)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    text = json_path.read_text("utf-8")
    assert "modèle-ünïcode" in text  # UTF-8, not \u escapes
    assert text == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert json.loads(text) == report
    assert "<html" in html_path.read_text("utf-8")
    # Writing again replaces both files and still leaves no temporary files behind.
    write_reports(report, out, pdf=False)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]


def test_write_reports_refuses_an_invalid_report(tmp_path: Path) -> None:
    report = make_report()
    del report["judges"]
    with pytest.raises(WeighbridgeError, match="judges"):
        write_reports(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import weighbridge.report.builder as builder

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(builder.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_reports(make_report(), tmp_path, pdf=False)
    assert list(tmp_path.iterdir()) == []


# --- browser ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_report_renders_cleanly_in_chromium(tmp_path: Path) -> None:
    html_path = write_reports(make_report(), tmp_path, pdf=False).html
    with open_in_chromium(html_path) as visit:
        page = visit.page
        rows = page.locator("#suite-hazards table.categories tbody tr.category")
        assert rows.count() == 13
        assert page.locator("#suite-hazards table.categories tfoot tr.overall").count() == 1
        assert page.locator("#model-name").inner_text() == "tiny-llama-1.1b-chat.Q4_K_M"
        chart = page.locator("#suite-hazards img.chart.forest")
        assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
        assert chart.evaluate("img => img.naturalWidth") > 600
    assert visit.errors == []
    assert visit.outside == []
