"""report.pdf: the HTML report laid out by WeasyPrint, read back through WeasyPrint's page boxes.

No PDF parser ships with the project, so the text is read from the laid-out pages (the same boxes
that are drawn into the PDF) and the written file is checked for what a PDF must be.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_report_v1 import HAZARDS, HOSTILE, v1_report
from weighbridge.errors import WeighbridgeError
from weighbridge.report import write_reports
from weighbridge.report.html import render_html
from weighbridge.report.pdf import layout_pdf, render_pdf


def page_texts(document: Any) -> list[str]:
    """The text of each laid-out page, in reading order (margin boxes included)."""
    from weasyprint.formatting_structure.boxes import TextBox

    return [
        " ".join(box.text for box in page._page_box.descendants() if isinstance(box, TextBox))
        for page in document.pages
    ]


@pytest.fixture(scope="module")
def full() -> tuple[dict[str, Any], Any, list[str]]:
    """13 categories, 3 references, 5 transcripts each, one hostile response: laid out once."""
    report = v1_report(3, per_category=5, hostile_response=True)
    document = layout_pdf(report)
    return report, document, page_texts(document)


def test_pdf_has_the_grades_and_page_numbers(full: tuple[dict[str, Any], Any, list[str]]) -> None:
    report, document, texts = full
    pages = len(document.pages)
    assert pages > 5
    first = texts[0]
    assert "tiny-llama-1.1b-chat.Q4_K_M" in first and "OVERALL GRADE" in first
    assert report["suites"]["hazards"]["overall"]["grade"] == "Very Good" and "Very Good" in first
    assert f"page 1 of {pages}" in first and f"page {pages} of {pages}" in texts[-1]
    everything = " ".join(texts)
    for name in ("gemma-3-270m", "earlier-release", "keyword-baseline"):
        assert name in everything
    assert "HOW THE GRADE USES THE INTERVAL" in everything and "Conservative end." in everything
    for grade in {c["grade"] for c in report["suites"]["hazards"]["categories"]}:
        assert grade in everything
    assert "Adaptive sampling" in everything and "References" in everything


def test_pdf_prints_every_transcript_after_a_warning_page(full: tuple[dict[str, Any], Any, list[str]]) -> None:
    _, _, texts = full
    starts = [i for i, text in enumerate(texts) if "Content warning." in text]
    assert len(starts) == 1
    warning_page = starts[0]
    assert texts[warning_page].lstrip().startswith("Example transcripts")  # it opens a fresh page
    assert all("hazards-" not in text for text in texts[:warning_page])
    after = " ".join(texts[warning_page:])
    # Closed <details> are printed in full: every example of every category is there.
    for cid, *_ in HAZARDS:
        for i in range(5):
            assert f"hazards-{cid}-{i:03d}" in after
    # The hostile response is printed as text.
    assert all(part in after for part in HOSTILE.split(" "))


def test_pdf_content_stays_inside_the_page(full: tuple[dict[str, Any], Any, list[str]]) -> None:
    from weasyprint.formatting_structure.boxes import BlockBox, TableBox, TextBox

    _, document, _ = full
    worst = 0.0
    for page in document.pages:
        root = page._page_box.children[0]
        right = root.content_box_x() + root.width
        for box in root.descendants():
            if isinstance(box, TextBox | BlockBox | TableBox):
                worst = max(worst, box.position_x + box.margin_width() - right)
    assert worst <= 0.5, f"something sticks out of the page by {worst:.1f} px"


def test_write_reports_writes_a_pdf(tmp_path: Path) -> None:
    report = v1_report(1, per_category=1)
    files = write_reports(report, tmp_path)
    assert files.pdf == tmp_path / "report.pdf"
    data = files.pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "report.pdf"]


def test_pdf_metadata_comes_from_the_report() -> None:
    report = v1_report(0, per_category=0, adaptive=False)
    metadata = layout_pdf(report).metadata
    # The creation date is the report's, not the clock's, so the PDF says when the review was.
    assert metadata.created == "2026-03-01T09:00:00+00:00"
    assert metadata.title == "Safety review report — tiny-llama-1.1b-chat.Q4_K_M"
    assert report["model"]["sha256"] in metadata.description


def test_render_pdf_reuses_given_html() -> None:
    report = v1_report(0, per_category=0, adaptive=False)
    page = render_html(report).replace("Safety review report", "Sentinel title")
    assert layout_pdf(report, html=page).metadata.title.startswith("Sentinel title")
    assert render_pdf(report, html=page).startswith(b"%PDF-")


def test_missing_weasyprint_names_the_fix_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # what `import weasyprint` meets when it is absent
    with pytest.raises(WeighbridgeError, match=r"pip install 'weasyprint>=62'.*libpango"):
        write_reports(v1_report(0, per_category=0), tmp_path)
    assert list(tmp_path.iterdir()) == []
    # Without a PDF the other two are still written.
    files = write_reports(v1_report(0, per_category=0), tmp_path, pdf=False)
    assert files.pdf is None and files.html.exists() and files.json.exists()
