"""Every action goes through here into the ledger, signed by the user who took it.

`record` is what intake, custody and the runner call: it resolves the acting user (see
`services.identity`) and appends. `record_as` is for callers that already hold the actor (the
workflow, user registration) and need the entry back to link their own rows to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `record_as` is the ledger's `append_as`, kept under this name because every caller that already
# holds its actor (workflow, custody, adjudication, notices) records through this module.
from weighbridge.services.identity import current_actor
from weighbridge.services.ledger import append_as as record_as
from weighbridge.store.db import Store

__all__ = ["record", "record_as"]


def record(store: Store, action: str, subject: str, evidence: Mapping[str, Any]) -> None:
    """Append `action` on `subject` to the ledger as the current user (created on first use)."""
    record_as(store, current_actor(store), action, subject, evidence)
