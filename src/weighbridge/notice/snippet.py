"""A Hugging Face model-card snippet from a verified notice: `model-index` results and a badge.

The numbers are the notice's own (unsafe rate and interval per category), so a card that pastes the
snippet states nothing the signed notice does not. Each result's `source` names the notice, which
is how a reader finds the signature to check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import yaml

from weighbridge.notice.statement import NoticeContent

__all__ = ["badge_line", "model_index", "snippet"]

RELEASE_COLOURS = {
    "open_access": "brightgreen",
    "research_release": "yellowgreen",
    "restricted_api": "orange",
    "closed_development": "red",
}


def model_index(notice: NoticeContent, url: str | None = None) -> dict[str, Any]:
    """The `model-index` block (HF model card metadata): one result per suite, one metric per category.

    Args:
        url: where the notice is published (linked as each result's source); a `urn:` naming the
            notice id when not given.
    """
    link = url or _urn(notice)
    results = []
    for suite in notice.suites:
        metrics: list[dict[str, Any]] = []
        for g in (g for g in notice.grades if g.suite == suite.id):
            metric: dict[str, Any] = {
                "type": "unsafe_rate",
                "name": f"Unsafe rate: {g.name}",
                "value": round(g.unsafe_rate, 6),
                "args": {
                    "category": g.category,
                    "n": g.n,
                    "ci95_low": round(g.ci_low, 6),
                    "ci95_high": round(g.ci_high, 6),
                },
            }
            if g.grade is not None:
                metric["args"]["grade"] = g.grade
            metrics.append(metric)
        results.append(
            {
                "task": {"type": "text-generation", "name": f"Safety review: {suite.title or suite.id}"},
                "dataset": {
                    "type": f"weighbridge/{suite.id}",
                    "name": f"weighbridge {suite.id} {suite.version}",
                    "revision": suite.content_hash,
                },
                "metrics": metrics,
                "source": {
                    "name": f"weighbridge notice {notice.notice_id} ({notice.organisation})",
                    "url": link,
                },
            }
        )
    return {"model-index": [{"name": notice.model_name, "results": results}]}


def badge_line(notice: NoticeContent, url: str | None = None) -> str:
    """A shields.io badge with the decided release type (dashes and underscores escaped as shields wants)."""
    label = notice.decided_release.replace("_", " ")
    colour = RELEASE_COLOURS.get(notice.decided_release, "lightgrey")

    def esc(text: str) -> str:
        return quote(text.replace("-", "--").replace("_", "__"), safe="")

    badge = f"https://img.shields.io/badge/{esc('weighbridge')}-{esc(label)}-{colour}"
    return f"[![weighbridge review: {label}]({badge})]({url or _urn(notice)})"


def snippet(notice: NoticeContent, url: str | None = None) -> str:
    """Front-matter YAML to merge into the card, then the badge line for its body."""
    text = yaml.safe_dump(model_index(notice, url), sort_keys=False, allow_unicode=True)
    return f"---\n{text}---\n\n{badge_line(notice, url)}\n"


def _urn(notice: NoticeContent) -> str:
    return f"urn:weighbridge:notice:{notice.notice_id}"
