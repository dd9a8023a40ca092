"""Open a page in Debian's headless Chromium through Playwright (no browser download)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageVisit:
    page: Any
    errors: list[str] = field(default_factory=list)  # console errors and uncaught page errors
    outside: list[str] = field(default_factory=list)  # requests that left file:/data:


@contextmanager
def open_in_chromium(html_path: Path) -> Iterator[PageVisit]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure-chromium.sh` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            visit = PageVisit(page)
            page.on("console", lambda m: visit.errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: visit.errors.append(f"pageerror: {e}"))
            page.on(
                "request",
                lambda r: visit.outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
            )
            page.goto(html_path.as_uri(), wait_until="load")
            yield visit
        finally:
            browser.close()
