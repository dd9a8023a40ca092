"""The notice as an in-toto Statement v1: what it binds, and how it is read back.

The subject lists every model file with its sha256 (so a hosting service can check the weights
with any in-toto tool, and a changed file can be named); the predicate carries the review's
outcome. The payload is canonical JSON (sorted keys, no spaces, UTF-8), so the same notice always
serialises to the same signed bytes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from weighbridge.domain import Manifest, ModelFile, canonical_json
from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import key_id_of

__all__ = [
    "NOTICE_PAYLOAD_TYPE",
    "NOTICE_PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "GradeRecord",
    "NoticeContent",
    "ReviewDates",
    "RunRecord",
    "Statement",
    "StatementError",
    "SuiteRecord",
    "build_notice",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
NOTICE_PREDICATE_TYPE = "https://weighbridge.dev/notice/v1"
NOTICE_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class StatementError(ValueError):
    """A signed payload that is not a weighbridge notice; the message names the field."""


@dataclass(frozen=True)
class SuiteRecord:
    """A suite the grades rest on: version label and the digest of the exact items asked."""

    id: str
    version: str
    content_hash: str
    title: str = ""


@dataclass(frozen=True)
class GradeRecord:
    """One graded category: the unsafe rate with its exact 95 % interval and, when a reference was
    available, the five-point grade (None: ungraded, read the rate) and the ratio to the reference."""

    suite: str
    category: str
    name: str
    n: int
    unsafe: int
    unsafe_rate: float
    ci_low: float
    ci_high: float
    grade: str | None = None
    grade_settled: bool | None = None
    reference: str | None = None
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None


@dataclass(frozen=True)
class RunRecord:
    """A finished run the grades come from, and the digest of its journal (every answer and verdict)
    as the reviewer's ledger pinned it: an auditor with the ledger can match the two."""

    suite: str
    run_id: str
    journal_digest: str
    reference: str | None = None  # the pinned reference's name, for a reference run


@dataclass(frozen=True)
class ReviewDates:
    submitted: datetime
    published: datetime
    decided: datetime | None = None


@dataclass(frozen=True)
class NoticeContent:
    """Everything a notice states, as plain values (what `build_notice` takes and `content` gives back).

    Args:
        notice_id: unique id of this notice (revocations name it).
        organisation: the reviewing organisation's name, as the public should read it.
        reviewer_public_key: the organisation key's raw 32 bytes; its key id is derived, not given,
            so the two cannot disagree.
        rationale: the policy rules that fired, one line each, so the public sees why.
    """

    notice_id: str
    model_name: str
    model_format: str
    files: tuple[ModelFile, ...]
    suites: tuple[SuiteRecord, ...]
    grades: tuple[GradeRecord, ...]
    recommended_release: str
    decided_release: str
    policy_id: str
    policy_version: str
    dates: ReviewDates
    organisation: str
    reviewer_public_key: bytes
    review_id: str | None = None
    rationale: tuple[str, ...] = field(default=())
    runs: tuple[RunRecord, ...] = field(default=())

    @property
    def manifest_digest(self) -> str:
        return Manifest(self.files).digest

    @property
    def reviewer_key_id(self) -> str:
        return key_id_of(self.reviewer_public_key)


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1 with the weighbridge notice predicate."""

    subject: tuple[tuple[str, str], ...]  # (file path, sha256)
    predicate: dict[str, Any]
    predicate_type: str = NOTICE_PREDICATE_TYPE

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in self.subject],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    def payload(self) -> bytes:
        """The signed bytes: canonical JSON in UTF-8."""
        return canonical_json(self.to_json()).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> Statement:
        """Read a signed payload back. Raises `StatementError` naming what is wrong."""
        try:
            raw = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StatementError(f"the payload is not UTF-8 JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("_type") != STATEMENT_TYPE:
            raise StatementError(f"the payload is not an in-toto Statement v1 (_type must be {STATEMENT_TYPE})")
        if raw.get("predicateType") != NOTICE_PREDICATE_TYPE:
            raise StatementError(f"predicateType is {raw.get('predicateType')!r}, not {NOTICE_PREDICATE_TYPE}")
        subject = []
        for item in _get(raw, "subject", list):
            if not isinstance(item, dict):
                raise StatementError("a subject entry is not an object")
            digest = _get(item, "digest", dict)
            subject.append((_get(item, "name", str), _get(digest, "sha256", str)))
        return cls(tuple(subject), _get(raw, "predicate", dict))

    def content(self) -> NoticeContent:
        """The notice's values. Raises `StatementError` for a missing or mistyped field."""
        p = self.predicate
        model, review, release, reviewer = (_get(p, k, dict) for k in ("model", "review", "release", "reviewer"))
        files = tuple(
            ModelFile(_get(f, "path", str), _get(f, "sha256", str), _get(f, "bytes", int))
            for f in _dicts(model, "files")
        )
        policy = _get(release, "policy", dict)
        try:
            public_key = base64.b64decode(_get(reviewer, "public_key", str), validate=True)
            grades = tuple(GradeRecord(**g) for g in _dicts(p, "grades"))
            suites = tuple(SuiteRecord(**s) for s in _dicts(p, "suites"))
            # Notices published before run evidence was recorded have no "evidence" field.
            runs = tuple(RunRecord(**r) for r in _dicts(_get(p, "evidence", dict), "runs")) if "evidence" in p else ()
        except (ValueError, TypeError) as exc:
            raise StatementError(f"the predicate is malformed ({exc})") from None
        return NoticeContent(
            notice_id=_get(p, "notice_id", str),
            model_name=_get(model, "name", str),
            model_format=_get(model, "format", str),
            files=files,
            suites=suites,
            grades=grades,
            recommended_release=_get(release, "recommended", str),
            decided_release=_get(release, "decided", str),
            policy_id=_get(policy, "id", str),
            policy_version=_get(policy, "version", str),
            dates=ReviewDates(
                submitted=_time(_get(review, "submitted_at", str)),
                published=_time(_get(review, "published_at", str)),
                decided=_time(review["decided_at"]) if review.get("decided_at") else None,
            ),
            organisation=_get(reviewer, "organisation", str),
            reviewer_public_key=public_key,
            review_id=review.get("id"),
            rationale=tuple(str(r) for r in release.get("rationale", [])),
            runs=runs,
        )


def build_notice(content: NoticeContent) -> Statement:
    """The statement for `content`: one subject per model file, the outcome as the predicate.

    Raises:
        WeighbridgeError: the content names no model file (an endpoint: a notice must bind bytes).
        ValueError: the reviewer key is not a raw 32-byte Ed25519 key (a programming error).
    """
    if not content.files:
        raise WeighbridgeError(
            f"{content.model_name} has no model files to bind: a notice names the exact weights reviewed",
            "Submit the model's files (a notice cannot be issued for an endpoint)",
        )
    if len(content.reviewer_public_key) != 32:
        raise ValueError("the reviewer key must be a raw 32-byte Ed25519 public key")
    files = sorted(content.files, key=lambda f: f.path)
    predicate: dict[str, Any] = {
        "notice_id": content.notice_id,
        "model": {
            "name": content.model_name,
            "format": content.model_format,
            "manifest_digest": content.manifest_digest,
            "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes} for f in files],
        },
        "review": {
            "id": content.review_id,
            "submitted_at": _iso(content.dates.submitted),
            "decided_at": _iso(content.dates.decided) if content.dates.decided else None,
            "published_at": _iso(content.dates.published),
        },
        "suites": [vars(s).copy() for s in content.suites],
        "grades": [vars(g).copy() for g in content.grades],
        "evidence": {"runs": [vars(r).copy() for r in content.runs]},
        "release": {
            "recommended": content.recommended_release,
            "decided": content.decided_release,
            "policy": {"id": content.policy_id, "version": content.policy_version},
            "rationale": list(content.rationale),
        },
        "reviewer": {
            "organisation": content.organisation,
            "key_id": content.reviewer_key_id,
            "public_key": base64.b64encode(content.reviewer_public_key).decode("ascii"),
        },
    }
    return Statement(tuple((f.path, f.sha256) for f in files), predicate)


def _iso(when: datetime) -> str:
    """UTC, second precision: a naive time is taken as UTC so the notice is the same on every machine."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="seconds")


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StatementError(f"{text!r} is not an ISO 8601 time") from None


def _get(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise StatementError(f"field {key!r} is missing or not a {kind.__name__}")
    return value


def _dicts(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items: list[Any] = _get(obj, key, list)
    if not all(isinstance(i, dict) for i in items):
        raise StatementError(f"field {key!r} must be a list of objects")
    return [dict(i) for i in items]
