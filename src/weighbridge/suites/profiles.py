"""Review profiles (`--profile quick|full`): named selections of suites, kept as data.

A profile is a line in `profiles.toml`, not code, so an agency can read what "quick" asks without
reading Python, and adding a profile does not touch the CLI. `"*"` in a profile's suites expands
to every registered built-in suite when the profile is resolved, so `full` grows with the registry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from weighbridge.errors import WeighbridgeError

PROFILES_FILE = "profiles.toml"
EVERY_REGISTERED = "*"
_FIX = "Reinstall weighbridge; profiles.toml ships with the package"


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    suites: tuple[str, ...]  # may hold EVERY_REGISTERED
    limit: int | None  # items per category; None: every item

    def suite_names(self, registered: Callable[[], Sequence[str]]) -> list[str]:
        """The suites to run, `"*"` expanded to `registered()`, each once, in the profile's order."""
        out: list[str] = []
        for name in self.suites:
            for one in registered() if name == EVERY_REGISTERED else [name]:
                if one not in out:
                    out.append(one)
        return out


def parse_profiles(text: str) -> dict[str, Profile]:
    """Profiles from TOML text, each table checked: `suites` a non-empty list of names, `limit` a
    positive integer when given, nothing else but `description`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise WeighbridgeError(f"{PROFILES_FILE} is not valid TOML ({error})", _FIX) from None
    return {name: _profile(name, table) for name, table in data.items()}


def _profile(name: str, table: Any) -> Profile:
    where = f"{PROFILES_FILE} [{name}]"
    if not isinstance(table, Mapping):
        raise WeighbridgeError(f"{where} is not a table", _FIX)
    unknown = sorted(set(table) - {"description", "suites", "limit"})
    if unknown:
        raise WeighbridgeError(f"{where} has unknown keys {unknown}", _FIX)
    suites = table.get("suites")
    if not isinstance(suites, list) or not suites or not all(isinstance(s, str) and s for s in suites):
        raise WeighbridgeError(f"{where}: 'suites' must be a non-empty list of suite names", _FIX)
    limit = table.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise WeighbridgeError(f"{where}: 'limit' must be a positive integer", _FIX)
    return Profile(name, str(table.get("description", "")), tuple(suites), limit)


@cache
def profiles() -> Mapping[str, Profile]:
    """The shipped profiles, read once per process."""
    text = resources.files("weighbridge.suites").joinpath(PROFILES_FILE).read_text(encoding="utf-8")
    return parse_profiles(text)


def get_profile(name: str) -> Profile:
    try:
        return profiles()[name]
    except KeyError:
        raise WeighbridgeError(f"Unknown profile {name!r}", f"Choose one of: {', '.join(profiles())}") from None
