"""Who is asking, what they may do, and the key that signs what they do.

A request carries `Authorization: Bearer <secret>`: a login session (`wbs_…`) or an API token
(`wbt_…`). Either names a registered user; their roles are re-read from the store on every
request, so a role taken away applies at once.

Signing: every action is a ledger entry signed by the actor's own Ed25519 key, as on the CLI. At
login the user's encrypted key file is opened with their key passphrase and the key is held in
this process's memory for the session's lifetime, and dropped at logout or expiry (`KeyRing`). An
API token holds no key: a token request that writes sends the key passphrase in the
`Weighbridge-Key-Passphrase` header and the key file is opened for that request only. The
trade-offs are written down in docs/api.md.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Header, Request

from weighbridge.api.problems import ApiProblem
from weighbridge.api.settings import ApiSettings
from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import KeySigner
from weighbridge.services import accounts
from weighbridge.services.identity import Actor, User, get_user
from weighbridge.store.db import Store
from weighbridge.workflow.states import RULES, Action, Role

ALL_ROLES: frozenset[Role] = frozenset(Role)


class RateLimiter:
    """A sliding-window counter per key, in this process only (a second server process keeps its
    own counts; docs/api.md says so). `hit` records an attempt and says how long to wait when the
    key is over its limit."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        return hits

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            now = self._clock()
            hits = self._recent(key, now)
            return max(0.0, hits[0] + self.window_s - now) if len(hits) >= self.limit else 0.0

    def hit(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._recent(key, now).append(now)
            if len(self._hits) > 10_000:  # forget idle keys so a scan of names cannot grow memory
                for k in [k for k, v in self._hits.items() if not v]:
                    del self._hits[k]


class KeyRing:
    """Unlocked signing keys of live sessions, by session id: in memory only, never written."""

    def __init__(self) -> None:
        self._keys: dict[str, KeySigner] = {}
        self._lock = threading.Lock()

    def put(self, session_id: str, signer: KeySigner) -> None:
        with self._lock:
            self._keys[session_id] = signer

    def get(self, session_id: str) -> KeySigner | None:
        with self._lock:
            return self._keys.get(session_id)

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._keys.pop(session_id, None)


def unlock_key(pem: bytes, passphrase: str, where: str) -> KeySigner:
    """Open a user's encrypted PEM key; a refusal that does not say which part was wrong."""
    try:
        key = serialization.load_pem_private_key(pem, passphrase.encode() if passphrase else None)
    except (TypeError, ValueError):
        raise ApiProblem(
            401, "login-failed", "Login failed", f"The signing key ({where}) does not open with that passphrase"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ApiProblem(401, "login-failed", "Login failed", f"The signing key ({where}) is not an Ed25519 key")
    return KeySigner(key)


def profile_key(keys: Path, name: str) -> bytes:
    path = keys / f"{name}.pem"
    try:
        return path.read_bytes()
    except OSError:
        raise ApiProblem(
            401,
            "login-failed",
            "Login failed",
            f"No signing key on the server for {name}",
            "Upload your encrypted key file as key_pem, or ask an admin to place it in the server's keys folder",
        ) from None


def check_key_is_users(signer: KeySigner, user: User) -> None:
    """The key must be the one registered for the user: otherwise entries would be signed by a key
    the ledger attributes to someone else (or to no one)."""
    if signer.key_id != user.key_id:
        raise ApiProblem(
            401, "login-failed", "Login failed", f"The signing key given is not the key registered for {user.name}"
        )


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. `signer` is None for a token request that sent no key passphrase."""

    user: User
    via: str  # "session" or "token"
    credential_id: str
    signer: KeySigner | None

    @property
    def roles(self) -> frozenset[Role]:
        return self.user.roles

    def actor(self) -> Actor:
        """The caller as the services' `Actor`: refused when no key is unlocked to sign with."""
        if self.signer is None:
            raise ApiProblem(
                403,
                "key-locked",
                "No signing key unlocked",
                "Every action is signed by its actor's own key, and this token request unlocked none",
                "Send the key passphrase in the Weighbridge-Key-Passphrase header, or log in for a session",
            )
        return Actor(self.user.name, self.user.roles, self.signer)


@dataclass
class ApiState:
    """What the routes share: the store, the settings and the in-memory security state."""

    store: Store
    settings: ApiSettings
    keyring: KeyRing
    login_by_address: RateLimiter
    failures_by_user: RateLimiter


def state(request: Request) -> ApiState:
    value: ApiState = request.app.state.weighbridge
    return value


StateDep = Annotated[ApiState, Depends(state)]


def _unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(
        401,
        "unauthenticated",
        "Authentication required",
        detail,
        "Log in at POST /api/v1/auth/login and send Authorization: Bearer <token>",
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticate(
    st: StateDep,
    authorization: Annotated[str | None, Header()] = None,
    weighbridge_key_passphrase: Annotated[str | None, Header()] = None,
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _unauthenticated("No bearer token")
    secret = authorization[7:].strip()
    if secret.startswith(accounts.SESSION_PREFIX):
        session = accounts.find_session(st.store, secret)
        signer = st.keyring.get(session.id) if session else None
        if session is None or signer is None:
            if session is not None:  # the server restarted: the key it held for this session is gone
                accounts.end_session(st.store, session.id)
            raise _unauthenticated("The session has ended or expired")
        return Principal(_user(st, session.user), "session", session.id, signer)
    if secret.startswith(accounts.TOKEN_PREFIX):
        token = accounts.find_token(st.store, secret)
        if token is None:
            raise _unauthenticated("The API token is unknown, revoked or expired")
        user = _user(st, token.user)
        signer = None
        if weighbridge_key_passphrase:
            signer = unlock_key(profile_key(st.settings.keys_dir, user.name), weighbridge_key_passphrase, "profile")
            check_key_is_users(signer, user)
        return Principal(user, "token", token.id, signer)
    raise _unauthenticated("Not a weighbridge token")


def _user(st: ApiState, name: str) -> User:
    try:
        return get_user(st.store, name)
    except WeighbridgeError:
        raise _unauthenticated(f"The user {name} no longer exists") from None


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def require(roles: Iterable[Role]) -> Callable[[Principal], Principal]:
    """A dependency admitting callers who hold any of `roles` (403 otherwise)."""
    wanted = frozenset(roles)

    def check(principal: PrincipalDep) -> Principal:
        if not principal.roles & wanted:
            raise ApiProblem(
                403,
                "forbidden",
                "Forbidden",
                f"{principal.user.name} may not do this: it needs the role {', '.join(sorted(wanted))}"
                f" ({principal.user.name} has {', '.join(sorted(principal.roles)) or 'no role'})",
                "Ask an admin for the role, or act as a user who has it",
            )
        return principal

    return check


def may_take(action: Action) -> Callable[[Principal], Principal]:
    """A dependency admitting the roles the workflow table (`workflow.states.RULES`) gives `action`."""
    return require(RULES[action].roles)


# The callers each route admits, by name, so a route's signature says who may call it.
Anyone = Annotated[Principal, Depends(require(ALL_ROLES))]
Admins = Annotated[Principal, Depends(require({Role.ADMIN}))]
Auditors = Annotated[Principal, Depends(require({Role.AUDITOR, Role.ADMIN}))]
Evaluators = Annotated[Principal, Depends(require({Role.EVALUATOR}))]
Revokers = Annotated[Principal, Depends(require({Role.APPROVER, Role.ADMIN}))]
