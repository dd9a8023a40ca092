"""`report.pdf`: the HTML report laid out for paper by WeasyPrint.

One source of truth: the PDF is the very page `render_html` makes, read through its print
stylesheet (A4, page numbers, tighter type). WeasyPrint lays out the content of `<details>` whether
or not it is open, so every example transcript is printed; the print stylesheet starts them on a
page of their own, behind their content warning.

WeasyPrint is imported only here and only when a PDF is asked for: it needs the system Pango
library, and a missing one must cost the PDF, with a message saying what to install, not the import
of the report package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weighbridge.errors import WeighbridgeError
from weighbridge.report.html import render_html

if TYPE_CHECKING:
    from weasyprint.document import Document

__all__ = ["layout_pdf", "render_pdf"]

_INSTALL = (
    "install WeasyPrint and Pango: `pip install 'weasyprint>=62'` and the system libraries "
    "(Debian/Ubuntu: `apt-get install libpango-1.0-0 libpangoft2-1.0-0`; macOS: `brew install pango`), "
    "or write the report without a PDF"
)


def layout_pdf(report: Mapping[str, Any], *, html: str | None = None) -> Document:
    """The report laid out in pages (WeasyPrint's `Document`), before it is written as PDF.

    Useful on its own to count pages or read the laid-out text without a PDF parser.

    Args:
        report: the report, as for `render_html`.
        html: `render_html(report)` when the caller already has it (rendering the plots again
            would cost a second or two).

    Raises:
        WeighbridgeError: WeasyPrint or the system Pango library is missing.
    """
    try:
        from weasyprint import HTML
        from weasyprint import urls as weasy_urls
    except (ImportError, OSError) as exc:  # OSError: Pango/Cairo shared library not found
        raise WeighbridgeError(f"report.pdf needs WeasyPrint, which could not be loaded ({exc})", _INSTALL) from exc
    # Everything the page shows is inline (data: URIs): refuse any other fetch, so a report can
    # never make WeasyPrint reach the network or read local files. Older WeasyPrint has no
    # URLFetcher class; its default fetcher is harmless here because the page names no URL.
    fetcher_class = getattr(weasy_urls, "URLFetcher", None)
    fetcher = fetcher_class(allowed_protocols=("data",)) if fetcher_class is not None else None
    page = HTML(string=html if html is not None else render_html(report), url_fetcher=fetcher, media_type="print")
    document: Document = page.render()
    return document


def render_pdf(report: Mapping[str, Any], *, html: str | None = None) -> bytes:
    """The report as PDF bytes (A4); `html` as for `layout_pdf`.

    Raises:
        WeighbridgeError: WeasyPrint or the system Pango library is missing.
    """
    data = layout_pdf(report, html=html).write_pdf()
    if not isinstance(data, bytes):  # write_pdf() without a target returns the bytes
        raise TypeError("WeasyPrint returned no PDF bytes")
    return data
