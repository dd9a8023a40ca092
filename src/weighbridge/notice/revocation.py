"""Signed revocation lists: which notices the organisation withdrew, when and why.

The list is itself a DSSE envelope signed by the organisation key, with its own payload type so a
revocation list can never be presented as a notice (the type is part of what is signed). It is
re-issued whole on every revocation, so a verifier holds one file and needs no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weighbridge.domain import canonical_json
from weighbridge.ledger.signing import Signer
from weighbridge.notice.dsse import Envelope, sign_envelope

__all__ = ["REVOCATIONS_PAYLOAD_TYPE", "Revocation", "RevocationList", "sign_revocations"]

REVOCATIONS_PAYLOAD_TYPE = "application/vnd.weighbridge.revocations+json"


@dataclass(frozen=True)
class Revocation:
    notice_id: str
    reason: str
    revoked_at: datetime


@dataclass(frozen=True)
class RevocationList:
    issued_at: datetime
    entries: tuple[Revocation, ...]

    def find(self, notice_id: str) -> Revocation | None:
        return next((r for r in self.entries if r.notice_id == notice_id), None)

    def payload(self) -> bytes:
        return canonical_json(
            {
                "issued_at": _iso(self.issued_at),
                "revoked": [
                    {"notice_id": r.notice_id, "reason": r.reason, "revoked_at": _iso(r.revoked_at)}
                    for r in sorted(self.entries, key=lambda r: (r.revoked_at, r.notice_id))
                ],
            }
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> RevocationList:
        """Raises ValueError when the payload is not a revocation list."""
        raw: Any = json.loads(payload.decode("utf-8"))
        if not isinstance(raw, dict) or not isinstance(raw.get("revoked"), list):
            raise ValueError("not a revocation list")
        entries = tuple(
            Revocation(str(e["notice_id"]), str(e["reason"]), datetime.fromisoformat(e["revoked_at"]))
            for e in raw["revoked"]
        )
        return cls(datetime.fromisoformat(raw["issued_at"]), entries)


def sign_revocations(revocations: RevocationList, signer: Signer) -> Envelope:
    return sign_envelope(revocations.payload(), REVOCATIONS_PAYLOAD_TYPE, signer)


def _iso(when: datetime) -> str:
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="seconds")
