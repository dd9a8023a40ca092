"""Every action goes through here into the ledger, signed by the user who took it.

`record` is what intake, custody and the runner call: it resolves the acting user (see
`services.identity`) and appends. `record_as` is for callers that already hold the actor (the
workflow, user registration) and need the entry back to link their own rows to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weighbridge.store.db import Store

if TYPE_CHECKING:
    from weighbridge.services.identity import Actor
    from weighbridge.services.ledger import LedgerEntry


def record(store: Store, action: str, subject: str, evidence: Mapping[str, Any]) -> None:
    """Append `action` on `subject` to the ledger as the current user (created on first use)."""
    from weighbridge.services.identity import current_actor

    record_as(store, current_actor(store), action, subject, evidence)


def record_as(store: Store, actor: Actor, action: str, subject: str, evidence: Mapping[str, Any]) -> LedgerEntry:
    from weighbridge.services.ledger import append

    return append(store, actor.signer, actor.name, action, subject, evidence)
