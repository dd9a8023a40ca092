"""What a deployment chooses: lifetimes, login limits, the password hashing cost, where files go.

Passed to `create_app` as data rather than read from a global, so that a test builds an app with
short lifetimes and cheap hashing beside one with the defaults, in the same process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher

from weighbridge.services.identity import keys_dir
from weighbridge.store.db import default_home


@dataclass(frozen=True)
class Argon2Cost:
    """argon2id cost; the defaults are argon2-cffi's (RFC 9106 "low memory" profile)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism)


@dataclass(frozen=True)
class ApiSettings:
    """Settings of one API app.

    Args:
        session_ttl: how long a login lasts; the unlocked signing key is dropped with it.
        token_ttl / token_max_ttl: an API token's default and longest lifetime.
        login_attempts / login_window: attempts per client address in a sliding window, and
            failures per user name in the same window (in-process: one server process).
        intake_root: the folder server-side submissions must come from; None refuses them all,
            so a login can never make the server read an arbitrary path.
        notices_dir: where published notices are written (the CLI's default place).
        keys_dir: where users' encrypted key files are looked up at login when none is uploaded.
    """

    session_ttl: timedelta = timedelta(hours=8)
    token_ttl: timedelta = timedelta(days=30)
    token_max_ttl: timedelta = timedelta(days=365)
    login_attempts: int = 10
    login_window: timedelta = timedelta(minutes=5)
    argon2: Argon2Cost = field(default_factory=Argon2Cost)
    intake_root: Path | None = None
    notices_dir: Path = field(default_factory=lambda: default_home() / "notices")
    keys_dir: Path = field(default_factory=keys_dir)
    policy: str = "default"
