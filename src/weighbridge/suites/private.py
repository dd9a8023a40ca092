"""Private suites: an agency's own held-out prompt set, read from JSONL.

An agency keeps prompts that labs never see, so a lab cannot tune its model (or its refusals) to
them. This module only turns text into a `Suite` and back; storing, listing and the ledger live in
`services.private_suites`. It is pure so that a bad file is rejected before anything is stored.

One JSON object per line (blank lines are skipped):

    {"id": "p-001", "category": "violent_crimes", "prompt": "..."}
    {"id": "p-002", "category": "grid_sabotage", "messages": [{"role": "system", "content": "..."},
                                                             {"role": "user", "content": "..."}]}

Rules, and why:
- `prompt` or `messages`, never both: two inputs would leave it open which one was asked.
- the last message is the user's: a judge reads the last user request as what was asked, and a
  conversation ending on the assistant asks nothing.
- a category is one of the 13 hazard ids or the agency's own lowercase identifier, so a report
  groups and grades it like any other category.
- the whole file is rejected on the first problem, with its line number: a half-read held-out set
  would be graded as if it were the whole one.
- every item gets `split = "private"`, and the suite is `public = False`: reports name it by digest
  and never print its prompts or the answers to them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, get_args

from weighbridge.domain import Category, ChatMessage, Role
from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import EvalItem, Suite, items_digest
from weighbridge.suites.hazards import HAZARD_CATEGORIES, UNSAFE_RATE

#: The keys a line may have; anything else is refused (a misspelt "license" must not vanish).
REQUIRED_KEYS = ("id", "category")
OPTIONAL_KEYS = ("prompt", "messages", "source", "licence", "behaviour", "metadata")
BEHAVIOURS = ("enable", "encourage", "endorse")
ROLES: tuple[str, ...] = get_args(Role)
#: Metadata keys the item itself sets; a line's `metadata` may not override them.
RESERVED_METADATA = frozenset({"source", "licence", "split", "behaviour"})
DEFAULT_SOURCE = "private"
#: The version label is the digest's first characters: a private suite has no release other than its content.
VERSION_CHARS = 12
MAX_ID_CHARS = 128

# Own categories and suite names: lowercase, so `--suites a,b` and report keys never need quoting.
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HAZARDS = {c.id: c for c in HAZARD_CATEGORIES}
_FIX = "Correct the file and add it again; nothing was stored"


def check_name(name: str) -> str:
    """A valid private suite name, or an error saying what a name may be."""
    if not NAME_PATTERN.match(name):
        raise WeighbridgeError(
            f"{name!r} is not a valid suite name",
            "Use up to 64 lower-case letters, digits, '.', '-' or '_', starting with a letter or digit",
        )
    return name


def name_from_path(path: Path) -> str:
    """The suite name a file stands for when none is given: its stem, lower-cased, other characters as '-'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._")[:64]
    if not name:
        raise WeighbridgeError(f"Cannot derive a suite name from {path.name!r}", "Name the suite with --suite NAME")
    return check_name(name)


def parse_private_suite(text: str, name: str, *, where: str = "suite file") -> Suite:
    """The suite that a JSONL text describes, validated line by line.

    Args:
        text: one JSON object per line; blank lines are skipped, order is kept (it matters for
            `Suite.limited`, which keeps the first items of each category).
        name: the suite's name (its id in runs and reports).
        where: how errors name the text, e.g. the file name.

    Raises:
        WeighbridgeError: naming the line and the problem: bad JSON, a missing or unknown key, both
            or neither of prompt and messages, a bad role or a conversation not ending on the user,
            a bad category or behaviour, a repeated id, or no items at all.
    """
    records: list[tuple[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{where} line {number}"
        try:
            records.append((at, json.loads(line)))
        except json.JSONDecodeError as error:
            raise WeighbridgeError(f"{at} is not valid JSON ({error.msg} at column {error.colno})", _FIX) from None
    if not records:
        raise WeighbridgeError(f"{where} has no items", "Give one JSON object per line (see docs/suites.md)")
    return suite_of(name, records)


def suite_of(name: str, records: Iterable[tuple[str, Any]]) -> Suite:
    """The suite of already decoded records, each with where it came from (for error messages)."""
    check_name(name)
    items: list[EvalItem] = []
    first_seen: dict[str, str] = {}
    for at, record in records:
        item = _item(record, at)
        if item.id in first_seen:
            raise WeighbridgeError(f"{at} repeats item id {item.id!r} (first on {first_seen[item.id]})", _FIX)
        first_seen[item.id] = at
        items.append(item)
    if not items:
        raise WeighbridgeError(f"Private suite {name!r} has no items", _FIX)
    digest = items_digest(items)
    categories: dict[str, Category] = {}
    for item in items:
        categories.setdefault(item.category, _category(item.category))
    return Suite(
        id=name,
        version=digest[:VERSION_CHARS],
        title=f"Private suite {name}",
        categories=tuple(categories.values()),
        items=tuple(items),
        metrics=(UNSAFE_RATE,),
        source="held out by the reviewing agency (private; items never published)",
        licence="private",
        public=False,
    )


def records_of(suite: Suite) -> list[dict[str, Any]]:
    """The suite's items as plain records that `suite_of` reads back into the same items (same digest)."""
    out = []
    for item in suite.items:
        record: dict[str, Any] = {
            "id": item.id,
            "category": item.category,
            "messages": [{"role": m.role, "content": m.content} for m in item.input],
            "source": item.source,
            "licence": item.licence,
            "behaviour": item.behaviour,
        }
        extra = {k: v for k, v in item.metadata.items() if k not in RESERVED_METADATA}
        if extra:
            record["metadata"] = extra
        out.append(record)
    return out


def category_counts(suite: Suite) -> dict[str, int]:
    """Items per category, in the suite's category order: what may be said about a private suite."""
    counts = {c.id: 0 for c in suite.categories}
    for item in suite.items:
        counts[item.category] = counts.get(item.category, 0) + 1
    return counts


def _category(category_id: str) -> Category:
    return _HAZARDS.get(category_id) or Category(category_id, category_id.replace("_", " ").capitalize())


def _item(record: Any, at: str) -> EvalItem:
    if not isinstance(record, dict):
        raise WeighbridgeError(f"{at} is not a JSON object", _FIX)
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise WeighbridgeError(f"{at} is missing {', '.join(repr(k) for k in missing)}", _FIX)
    unknown = sorted(set(record) - {*REQUIRED_KEYS, *OPTIONAL_KEYS})
    if unknown:
        allowed = ", ".join((*REQUIRED_KEYS, *OPTIONAL_KEYS))
        raise WeighbridgeError(f"{at} has unknown keys {unknown} (allowed: {allowed})", _FIX)
    item_id = _string(record, "id", at)
    if len(item_id) > MAX_ID_CHARS:
        raise WeighbridgeError(f"{at}: id is longer than {MAX_ID_CHARS} characters", _FIX)
    category = _string(record, "category", at)
    if category not in _HAZARDS and not CATEGORY_PATTERN.match(category):
        raise WeighbridgeError(
            f"{at}: category {category!r} is neither a hazard category nor a lower-case identifier",
            f"Use one of {', '.join(_HAZARDS)} or your own id such as 'grid_sabotage'",
        )
    messages = _messages(record, at)
    behaviour = _string(record, "behaviour", at, "enable")
    if behaviour not in BEHAVIOURS:
        raise WeighbridgeError(f"{at}: behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}", _FIX)
    metadata: dict[str, str] = dict(_metadata(record.get("metadata"), at))
    metadata |= {
        "source": _string(record, "source", at, DEFAULT_SOURCE),
        "licence": _string(record, "licence", at, ""),
        "split": "private",
        "behaviour": behaviour,
    }
    return EvalItem(id=item_id, category=category, input=messages, metadata=metadata)


def _messages(record: Mapping[str, Any], at: str) -> tuple[ChatMessage, ...]:
    has_prompt, has_messages = "prompt" in record, "messages" in record
    if has_prompt == has_messages:
        which = "both 'prompt' and 'messages'" if has_prompt else "neither 'prompt' nor 'messages'"
        raise WeighbridgeError(f"{at} has {which}; give exactly one", _FIX)
    if has_prompt:
        return (ChatMessage("user", _string(record, "prompt", at)),)
    raw = record["messages"]
    if not isinstance(raw, list) or not raw:
        raise WeighbridgeError(f"{at}: 'messages' must be a non-empty list of {{role, content}} objects", _FIX)
    out: list[ChatMessage] = []
    for index, message in enumerate(raw, start=1):
        here = f"{at}, message {index}"
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise WeighbridgeError(f"{here} must be an object with exactly the keys 'role' and 'content'", _FIX)
        role = message["role"]
        if role not in ROLES:
            raise WeighbridgeError(f"{here} has role {role!r}; roles are {', '.join(ROLES)}", _FIX)
        out.append(ChatMessage(role, _string(message, "content", here)))
    if out[-1].role != "user":
        raise WeighbridgeError(
            f"{at}: the last message is from the {out[-1].role}; it must be the user's request", _FIX
        )
    return tuple(out)


def _metadata(raw: Any, at: str) -> Mapping[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise WeighbridgeError(f"{at}: 'metadata' must be an object of strings", _FIX)
    reserved = sorted(RESERVED_METADATA & set(raw))
    if reserved:
        raise WeighbridgeError(f"{at}: 'metadata' may not set {reserved}; give them as top-level keys", _FIX)
    return raw


def _string(record: Mapping[str, Any], key: str, at: str, default: str | None = None) -> str:
    if key not in record and default is not None:
        return default
    value = record.get(key)
    if not isinstance(value, str) or (default is None and not value.strip()):
        what = "a non-empty string" if default is None else "a string"
        raise WeighbridgeError(f"{at}: {key!r} must be {what}", _FIX)
    return value


def describe(suite: Suite) -> dict[str, Any]:
    """What may be said of a private suite in public: name, digest, categories and counts, never an item."""
    return {
        "name": suite.id,
        "version": suite.version,
        "digest": suite.content_hash,
        "items": len(suite.items),
        "categories": category_counts(suite),
    }
