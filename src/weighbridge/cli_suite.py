"""`weighbridge suite ...`: add, list and show suites; and how `review` picks its suites.

A private suite's prompts never reach the terminal: `list` and `show` print names, digests,
categories and counts only, so a screen share or a CI log cannot leak a held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from weighbridge.cliutil import DbOption, friendly_errors, open_store, out
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import Suite

suite_app = typer.Typer(
    help="Suites: built-in ones and private held-out prompt sets kept in the store (never printed).",
    no_args_is_help=True,
)

SuiteFileOption = Annotated[
    Path | None,
    typer.Option(
        "--suite-file",
        help="A private suite (JSONL, see docs/suites.md): added to the store under --suite NAME or the file's "
        "name (the same file again is a no-op), then reviewed. Its prompts are never printed in reports.",
        show_default=False,
    ),
]
SuitesOption = Annotated[
    str | None,
    typer.Option(
        "--suites",
        help="Several suites, comma-separated (built-in or private names): run one after another, one report "
        "per suite in OUT/SUITE/.",
        show_default=False,
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="A named selection of suites and items per category from suites/profiles.toml: quick or full. "
        "--limit overrides its limit.",
        show_default=False,
    ),
]


def read_suite_file(path: Path, name: str | None) -> Suite:
    """Parse a private suite file (pure: nothing is stored), named `name` or after the file."""
    from weighbridge.suites.private import check_name, name_from_path, parse_private_suite

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WeighbridgeError(f"Cannot read {path}: {error}", "Give a UTF-8 JSONL file") from None
    return parse_private_suite(text, check_name(name) if name else name_from_path(path), where=path.name)


@dataclass(frozen=True)
class Selection:
    """What a review runs: suite names in order, the private suite to add first (if any), the limit."""

    suites: tuple[str, ...]
    limit: int | None
    private: Suite | None = None


def review_selection(
    suite: str | None, suites: str | None, suite_file: Path | None, profile: str | None, limit: int | None
) -> Selection:
    """The suites `review` runs from its options; contradicting options are refused.

    `--suite` alone names one suite; with `--suite-file` it names the private suite the file is
    added as. `--suites` and `--profile` each stand alone. `--limit` wins over a profile's limit.
    """
    if profile is not None:
        if suite is not None or suites is not None or suite_file is not None:
            raise WeighbridgeError(
                "--profile chooses the suites itself", "Leave out --suite, --suites and --suite-file, or --profile"
            )
        from weighbridge.evals import registry
        from weighbridge.suites.profiles import get_profile

        chosen = get_profile(profile)
        names = chosen.suite_names(registry.suites.names)
        return Selection(tuple(names), limit if limit is not None else chosen.limit)
    if suites is not None:
        if suite is not None or suite_file is not None:
            raise WeighbridgeError("--suites contradicts --suite and --suite-file", "Give one of them")
        names = [n.strip() for n in suites.split(",") if n.strip()]
        if not names:
            raise WeighbridgeError("--suites names no suite", "Give names separated by commas, e.g. hazards,my-set")
        if len(set(names)) != len(names):
            raise WeighbridgeError("--suites names a suite twice", "Name each suite once")
        return Selection(tuple(names), limit)
    if suite_file is not None:
        private = read_suite_file(suite_file, suite)
        return Selection((private.id,), limit, private)
    return Selection((suite or "hazards",), limit)


def check_suites_exist(selection: Selection, db: str | None) -> None:
    """Every suite a review names exists, checked before any review starts (and before anything
    is written: a SQLite store that does not exist yet holds no private suite, so it is not made)."""
    from weighbridge.evals import registry
    from weighbridge.services.review import load_suite
    from weighbridge.store.db import default_url

    added = selection.private.id if selection.private is not None else None
    unknown = [n for n in selection.suites if n != added and n not in registry.suites.names()]
    if not unknown:
        return
    url = db or default_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        load_suite(unknown[0])  # raises: without a store only registered suites exist
    store = open_store(db)
    try:
        for name in unknown:
            load_suite(name, store)
    finally:
        store.close()


@suite_app.command("add")
@friendly_errors
def add(
    name: Annotated[str, typer.Argument(help="Suite name: lower-case letters, digits, '.', '-', '_'.")],
    file: Annotated[Path, typer.Argument(help="The suite as JSONL: one item per line (see docs/suites.md).")],
    db: DbOption = None,
) -> None:
    """Keep a private held-out suite in the store (a signed ledger entry). The whole file is checked
    first; any bad line rejects it and nothing is stored. Adding the same items again is a no-op."""
    from weighbridge.services.private_suites import add_private_suite

    suite = read_suite_file(file, name)
    store = open_store(db)
    try:
        added = add_private_suite(store, suite)
    finally:
        store.close()
    s = added.suite
    how = "added" if added.new else "already stored (no change)"
    out.print(f"Private suite {s.name}: {s.items} items in {len(s.categories)} categories · sha256 {s.digest} · {how}")


@suite_app.command("list")
@friendly_errors
def list_(db: DbOption = None) -> None:
    """Built-in suites and the private suites in the store, with item counts and digests."""
    from weighbridge.evals import registry
    from weighbridge.services.private_suites import list_private_suites

    table = Table("name", "kind", "version", "items", "categories", "digest", "added", title="Suites")
    for name in registry.suites.names():
        suite = registry.suites.get(name).load()
        kind = "built-in" if suite.public else "built-in, private"
        table.add_row(
            name, kind, suite.version, str(len(suite.items)), str(len(suite.categories)), suite.content_hash[:16], "—"
        )
    store = open_store(db)
    try:
        stored = list_private_suites(store)
    finally:
        store.close()
    for s in stored:
        added = f"{s.added_by}, {s.created_at:%Y-%m-%d %H:%M}"
        table.add_row(s.name, "private", s.version, str(s.items), str(len(s.categories)), s.digest[:16], added)
    out.print(table)


@suite_app.command("show")
@friendly_errors
def show(name: Annotated[str, typer.Argument(help="Suite name.")], db: DbOption = None) -> None:
    """A suite's digest and its categories with item counts; never a private suite's prompts."""
    from weighbridge.services.review import load_suite
    from weighbridge.suites.private import category_counts

    store = open_store(db)
    try:
        suite = load_suite(name, store)
    finally:
        store.close()
    privacy = "public" if suite.public else "private: items are never printed"
    out.print(f"{suite.title} · {suite.id} {suite.version} · {len(suite.items)} items · {privacy}")
    out.print(f"sha256 {suite.content_hash}")
    table = Table("category", "name", "items")
    for category_id, count in category_counts(suite).items():
        table.add_row(category_id, suite.category(category_id).name, str(count))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(suite_app, name="suite")
