"""Who is acting: users, their roles and their Ed25519 keys.

A user's private key never enters the store. It lives in a PKCS8 PEM file the user holds, encrypted
with their passphrase; the store keeps the public key and the roles, and every registration is a
ledger entry signed by the admin who made it. The CLI acts as the user whose key file it is given,
so "who did this" is proven by a signature, not claimed by a flag anyone can type.

Which key: `WEIGHBRIDGE_USER_KEY` (a path), else `WEIGHBRIDGE_USER` (a profile: the key file
`$WEIGHBRIDGE_HOME/keys/NAME.pem`), else the local admin's key file when it exists. A store with no
users at all creates that local admin on first use (all roles, for one person working alone) so
the quick path needs no set-up. Its key is encrypted like every other key, with a random passphrase
kept beside it (`local-admin.passphrase`, 0600): as safe as the home directory, no safer — teams
register named users and keep their passphrases to themselves.

The passphrase comes from `WEIGHBRIDGE_USER_PASSPHRASE`, else a `NAME.passphrase` file beside the
key, else a prompt on a terminal.
"""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.signing import KeySigner, Signer, key_id_of
from weighbridge.services.ledger import append_as
from weighbridge.store.db import Store, default_home
from weighbridge.store.workflow_schema import UserRow
from weighbridge.workflow.states import Role

LOCAL_ADMIN = "local-admin"
USER_ACTION = "user.add"
Notice = Callable[[str], None]
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[Role]
    public_key: bytes
    key_id: str
    created_by: str


@dataclass(frozen=True)
class Actor:
    """The user a command acts as, with the key that signs their ledger entries."""

    name: str
    roles: frozenset[Role]
    signer: Signer

    def has(self, role: Role) -> bool:
        return role in self.roles


def keys_dir() -> Path:
    return default_home() / "keys"


def check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS or name[0] in "-.":
        raise WeighbridgeError(f"Invalid user name {name!r}", "Use up to 64 lowercase letters, digits, '-', '_' or '.'")
    return name


def parse_roles(roles: Iterable[str]) -> frozenset[Role]:
    try:
        parsed = frozenset(Role(r.strip().lower()) for r in roles)
    except ValueError as exc:
        valid = ", ".join(r.value for r in Role)
        raise WeighbridgeError(f"Unknown role: {exc}", f"Roles are: {valid}") from None
    if not parsed:
        raise WeighbridgeError("A user needs at least one role", f"Give --role ({', '.join(r.value for r in Role)})")
    return parsed


# -- key files ------------------------------------------------------------------------------------


def write_key_file(path: Path, passphrase: str) -> KeySigner:
    """Generate a key pair and write the private key, passphrase-encrypted, to a new 0600 file."""
    if not passphrase:
        raise WeighbridgeError("A user key needs a passphrase", "Set WEIGHBRIDGE_NEW_USER_PASSPHRASE or type one")
    signer = KeySigner.generate()
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    _write_private(path, pem)
    return signer


def load_key_file(path: Path, passphrase: str | None) -> KeySigner:
    """The signer in a PEM key file; a clear error for a missing file, a wrong passphrase or not Ed25519."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise WeighbridgeError(
            f"Cannot read the user key {path}: {exc.strerror}", "Check WEIGHBRIDGE_USER_KEY"
        ) from None
    try:
        key = serialization.load_pem_private_key(pem, passphrase.encode() if passphrase else None)
    except TypeError:
        # Encrypted but no passphrase given, or a passphrase given for an unencrypted key.
        if passphrase:
            key = serialization.load_pem_private_key(pem, None)
        else:
            raise WeighbridgeError(
                f"The user key {path} is encrypted and no passphrase was given",
                "Set WEIGHBRIDGE_USER_PASSPHRASE or run from a terminal to be asked",
            ) from None
    except ValueError:
        raise WeighbridgeError(
            f"Wrong passphrase for the user key {path} (or the file is not a PEM private key)",
            "Check WEIGHBRIDGE_USER_PASSPHRASE",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WeighbridgeError(f"The user key {path} is not an Ed25519 key", "Use a key made by `weighbridge user add`")
    return KeySigner(key)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WeighbridgeError(f"{path} already exists", "Choose another --key-out or remove the old file") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _passphrase_for(path: Path, prompt: Callable[[str], str] | None) -> str | None:
    env = os.environ.get("WEIGHBRIDGE_USER_PASSPHRASE")
    if env:
        return env
    beside = path.with_suffix(".passphrase")
    if beside.is_file():
        return beside.read_text(encoding="utf-8").strip()
    if prompt is not None:
        return prompt(f"Passphrase for {path}: ")
    return None


# -- users in the store ---------------------------------------------------------------------------


def _user(row: UserRow) -> User:
    roles = frozenset(Role(r) for r in row.roles.split(",") if r)
    return User(row.name, roles, row.public_key, row.key_id, row.created_by)


def list_users(store: Store) -> list[User]:
    with store.session() as s:
        return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def get_user(store: Store, name: str) -> User:
    with store.session() as s:
        row = s.get(UserRow, name)
    if row is None:
        raise WeighbridgeError(f"No user named {name!r}", "Run `weighbridge user list`")
    return _user(row)


def user_by_key(store: Store, key_id: str) -> User | None:
    with store.session() as s:
        row = s.scalars(select(UserRow).where(UserRow.key_id == key_id)).first()
    return _user(row) if row else None


def _has_users(store: Store) -> bool:
    with store.session() as s:
        return s.scalars(select(UserRow.name).limit(1)).first() is not None


def require_admin(actor: Actor) -> None:
    if not actor.has(Role.ADMIN):
        raise WeighbridgeError(f"{actor.name} may not add users: that needs the admin role", "Ask an admin")


def register(store: Store, by: Actor, name: str, roles: frozenset[Role], public_key: bytes) -> User:
    """Add a user with an existing public key (a user may bring their own); `by` must be an admin.

    The registration is a ledger entry signed by `by`, which is what lets verification tell a real
    user from a row written into the database. (The first user signs their own: `bootstrap_local_admin`.)
    """
    check_name(name)
    require_admin(by)
    key_id = key_id_of(public_key)
    row = UserRow(
        name=name,
        public_key=public_key,
        key_id=key_id,
        roles=",".join(sorted(roles)),
        created_by=by.name,
    )
    try:
        with store.session() as s:
            s.add(row)
    except IntegrityError:
        raise WeighbridgeError(
            f"A user named {name!r} or with this key already exists", "Run `weighbridge user list`"
        ) from None
    user = _user(row)
    evidence = {"name": name, "roles": sorted(roles), "public_key": public_key.hex(), "key_id": key_id}
    append_as(store, by, USER_ACTION, name, evidence)
    return user


def add_user(
    store: Store, by: Actor, name: str, roles: Sequence[str], passphrase: str, key_out: Path | None = None
) -> tuple[User, Path]:
    """Create a key pair for a new user: private key to `key_out` (encrypted), public key registered."""
    check_name(name)
    parsed = parse_roles(roles)
    require_admin(by)
    path = key_out or keys_dir() / f"{name}.pem"
    if path.exists():
        raise WeighbridgeError(f"{path} already exists", "Choose another --key-out or remove the old file")
    signer = write_key_file(path, passphrase)
    try:
        user = register(store, by, name, parsed, signer.public_key)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return user, path


def bootstrap_local_admin(store: Store, notice: Notice) -> Actor:
    """The first identity of a fresh store: `local-admin` with every role, key file in WEIGHBRIDGE_HOME."""
    path = keys_dir() / f"{LOCAL_ADMIN}.pem"
    if path.exists():
        signer = load_key_file(path, _passphrase_for(path, None))
    else:
        passphrase = secrets.token_urlsafe(24)
        _write_private(path.with_suffix(".passphrase"), passphrase.encode())
        signer = write_key_file(path, passphrase)
    roles = frozenset(Role)
    row = UserRow(
        name=LOCAL_ADMIN,
        public_key=signer.public_key,
        key_id=signer.key_id,
        roles=",".join(sorted(roles)),
        created_by=LOCAL_ADMIN,
    )
    try:
        with store.session() as s:
            s.add(row)
    except IntegrityError:
        pass  # another process bootstrapped this store at the same moment: its row is ours too
    else:
        evidence = {
            "name": LOCAL_ADMIN,
            "roles": sorted(roles),
            "public_key": signer.public_key.hex(),
            "key_id": signer.key_id,
        }
        append_as(store, Actor(LOCAL_ADMIN, roles, signer), USER_ACTION, LOCAL_ADMIN, evidence)
        notice(
            f"Created the local admin identity '{LOCAL_ADMIN}' (all roles) with its key in {path}; "
            "teams add named users with `weighbridge user add`."
        )
    return _actor_for(store, signer, path)


# Key files are opened once per process and path: a prompt or a key derivation per ledger entry
# would be slow and, at a terminal, maddening. Roles are re-read from the store on every call.
_SIGNERS: dict[Path, KeySigner] = {}


def current_actor(store: Store, notice: Notice | None = None) -> Actor:
    """The user this process acts as (see the module docstring for where the key comes from)."""
    say = notice or (lambda line: print(line, file=sys.stderr))
    path = _key_path()
    if path is None:
        local = keys_dir() / f"{LOCAL_ADMIN}.pem"
        if not _has_users(store):
            return bootstrap_local_admin(store, say)
        if not local.exists():
            raise WeighbridgeError(
                "No user identity given and this store already has users",
                "Set WEIGHBRIDGE_USER_KEY=path/to/key.pem (or WEIGHBRIDGE_USER=NAME for "
                "$WEIGHBRIDGE_HOME/keys/NAME.pem)",
            )
        path = local
    return _actor_for(store, _signer_at(path), path)


def actor_named(store: Store, name: str) -> Actor:
    """The user `name`, acting through their profile's key file `$WEIGHBRIDGE_HOME/keys/NAME.pem`
    (as `WEIGHBRIDGE_USER=NAME` would): a command's `--as NAME`. The key decides who signs, so a
    key file that belongs to someone else is refused rather than signed with."""
    path = keys_dir() / f"{check_name(name)}.pem"
    if not path.is_file():
        raise WeighbridgeError(
            f"No key file for user {name!r} ({path})",
            "Give the user's own key with WEIGHBRIDGE_USER_KEY=path/to/key.pem, or ask an admin to add them",
        )
    actor = _actor_for(store, _signer_at(path), path)
    if actor.name != name:
        raise WeighbridgeError(f"The key {path} belongs to {actor.name!r}, not {name!r}", "Use your own key file")
    return actor


def _signer_at(path: Path) -> KeySigner:
    signer = _SIGNERS.get(path.resolve())
    if signer is None:
        prompt = getpass.getpass if sys.stdin.isatty() else None
        signer = load_key_file(path, _passphrase_for(path, prompt))
        _SIGNERS[path.resolve()] = signer
    return signer


def actor_from_key(store: Store, path: Path, passphrase: str | None) -> Actor:
    """The registered user whose key file is at `path` (for tests and services acting for someone)."""
    return _actor_for(store, load_key_file(path, passphrase), path)


def _key_path() -> Path | None:
    key = os.environ.get("WEIGHBRIDGE_USER_KEY")
    if key:
        return Path(key).expanduser()
    profile = os.environ.get("WEIGHBRIDGE_USER")
    if profile:
        return keys_dir() / f"{check_name(profile)}.pem"
    return None


def _actor_for(store: Store, signer: KeySigner, path: Path) -> Actor:
    user = user_by_key(store, signer.key_id)
    if user is None:
        raise WeighbridgeError(
            f"The key {path} (id {signer.key_id[:12]}) is not registered in this store",
            "Ask an admin to add you (`weighbridge user add`), or check --db / WEIGHBRIDGE_DB",
        )
    return Actor(user.name, user.roles, signer)
