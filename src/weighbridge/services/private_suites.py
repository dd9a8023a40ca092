"""Private suites in the store: add one (a signed ledger entry), list them, open one by name.

A name is bound to one content digest for good, as a reference name is to its weights: runs record
the suite by name, version and digest, and a name that later meant other items would make a stored
run's report unreadable or, worse, describe items it never asked. Adding the same items again is a
no-op; other items under a taken name are refused (add them under a new name, e.g. NAME-v2).

The ledger entry names the suite, its digest and its counts per category, never an item: the ledger
is exported for audit, and the prompts stay in the agency's database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from weighbridge.errors import WeighbridgeError
from weighbridge.evals import registry
from weighbridge.evals.records import Suite
from weighbridge.services import audit
from weighbridge.store.db import Store
from weighbridge.store.suite_schema import PrivateSuiteRow
from weighbridge.suites.private import category_counts, records_of, suite_of

ADD_ACTION = "suite.add"


@dataclass(frozen=True)
class StoredSuite:
    """A private suite as listed: everything but its items."""

    name: str
    version: str
    digest: str
    title: str
    items: int
    categories: dict[str, int]
    added_by: str
    created_at: datetime


@dataclass(frozen=True)
class Added:
    suite: StoredSuite
    new: bool  # False: the same items were already stored under this name


def _listed(row: PrivateSuiteRow) -> StoredSuite:
    return StoredSuite(
        row.name,
        row.version,
        row.digest,
        row.title,
        row.item_count,
        json.loads(row.categories_json),
        row.added_by,
        row.created_at,
    )


def add_private_suite(store: Store, suite: Suite) -> Added:
    """Store `suite` (parsed by `suites.private.parse_private_suite`) under its id.

    Raises:
        WeighbridgeError: the name is a registered built-in suite's, or is taken by other items.
    """
    if suite.public:
        raise WeighbridgeError(f"Suite {suite.id!r} is public", "Only private suites are kept in the store")
    if suite.id in registry.suites.names():
        raise WeighbridgeError(
            f"{suite.id!r} is the name of a built-in suite", "Add the private suite under another name"
        )
    existing = find(store, suite.id)
    if existing is not None:
        if existing.digest != suite.content_hash:
            raise WeighbridgeError(
                f"Private suite {suite.id!r} already holds other items (digest {existing.digest[:12]}, "
                f"given {suite.content_hash[:12]})",
                f"Add the new items under a new name (e.g. {suite.id}-v2); a stored suite never changes, so the "
                "runs that name it keep meaning what they meant",
            )
        return Added(existing, new=False)
    from weighbridge.services.identity import current_actor

    actor = current_actor(store)
    counts = category_counts(suite)
    audit.record_as(
        store,
        actor,
        ADD_ACTION,
        suite.id,
        {"digest": suite.content_hash, "version": suite.version, "items": len(suite.items), "categories": counts},
    )
    with store.session() as s:
        s.add(
            PrivateSuiteRow(
                name=suite.id,
                version=suite.version,
                digest=suite.content_hash,
                title=suite.title,
                item_count=len(suite.items),
                categories_json=json.dumps(counts),
                items_json=json.dumps(records_of(suite), ensure_ascii=False),
                added_by=actor.name,
            )
        )
    found = find(store, suite.id)
    assert found is not None
    return Added(found, new=True)


def find(store: Store, name: str) -> StoredSuite | None:
    with store.session() as s:
        row = s.get(PrivateSuiteRow, name)
        return _listed(row) if row is not None else None


def list_private_suites(store: Store) -> list[StoredSuite]:
    with store.session() as s:
        return [_listed(r) for r in s.scalars(select(PrivateSuiteRow).order_by(PrivateSuiteRow.name))]


def load_private_suite(store: Store, name: str) -> Suite | None:
    """The stored suite with its items, checked against its recorded digest; None if there is none.

    Raises:
        WeighbridgeError: the stored items no longer hash to the digest recorded when they were added.
    """
    with store.session() as s:
        row = s.get(PrivateSuiteRow, name)
        if row is None:
            return None
        digest, text = row.digest, row.items_json
    records = [(f"stored item {n} of {name}", r) for n, r in enumerate(json.loads(text), start=1)]
    suite = suite_of(name, records)
    if suite.content_hash != digest:
        raise WeighbridgeError(
            f"The stored items of private suite {name!r} hash to {suite.content_hash[:12]}, not to the digest "
            f"{digest[:12]} recorded when it was added",
            "Restore the database from a backup; the ledger's suite.add entry records the digest",
        )
    return suite
