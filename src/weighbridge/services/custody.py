"""Custody of submitted weights: encrypted at rest, checked on demand, decrypted only for a purpose.

`CustodyVault` is the one entry point. It keeps ciphertext under `root/<submission>/<n>.wbc`, the
rows that describe it in the store (`custody_objects`, `custody_keys`), and an `access_log` row for
every deposit, verification and decryption: who, what, why, when.

Plaintext leaves custody only through `materialize`, for a user whose role may evaluate and for a
stated purpose, into a private temporary directory that is removed when the `with` block ends,
whatever way it ends. A process killed outright (SIGKILL) cannot clean up, so those directories
live under one well-known per-user directory and the next vault to start sweeps the ones whose
owner is gone.

There is deliberately no "export" operation: exporting plaintext is for the submitter role, which
arrives with roles in a later issue.

Keys: the master key comes from WEIGHBRIDGE_PASSPHRASE, WEIGHBRIDGE_KEY_FILE, or (the quick path of
one local user) a key file created outside the data directory (`local_key`), so a copy of
WEIGHBRIDGE_HOME alone never decrypts anything. `CustodyVault.rotate` re-wraps every data key under
a new master key in one transaction; the blobs themselves never change.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from weighbridge.domain import ModelFile
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.custody import (
    DEFAULT_CHUNK_BYTES,
    KEY_BYTES,
    CustodyError,
    KdfSpec,
    KeyFile,
    KeySource,
    MasterKeyRecord,
    Passphrase,
    PromptedPassphrase,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    new_master_key,
    unlock,
    unwrap_data_key,
    wrap_data_key,
)
from weighbridge.services.audit import record, record_as
from weighbridge.store.custody_schema import AccessLogRow, CustodyKeyRow, CustodyObjectRow
from weighbridge.store.db import Store, default_home
from weighbridge.store.schema import SubmissionRow, utcnow
from weighbridge.workflow.states import RULES, Action, Role, permitted

if TYPE_CHECKING:
    from weighbridge.services.identity import Actor

MASTER_KEY_ID = 1  # one master key per store; rotation re-wraps the data keys and updates this row
LEGACY_KEY_FILE = "custody.key"  # where the quick path's key used to live: beside the ciphertext
ROTATE_SUBJECT = "custody"  # the ledger subject of key rotations (they concern no one submission)
BLOB_SUFFIX = ".wbc"
# A lease directory is swept only when its lock is free *and* it is older than this, which closes
# the instant between a new lease creating its lock file and locking it.
SWEEP_MIN_AGE_S = 30.0


def key_source_from_env(interactive: bool) -> KeySource:
    """The master key's source: WEIGHBRIDGE_PASSPHRASE, else WEIGHBRIDGE_KEY_FILE, else a prompt.

    Args:
        interactive: whether a prompt may be shown (a terminal is attached). Scripts and CI set one
            of the variables instead; without either, this fails with what to set.
    """
    passphrase = os.environ.get("WEIGHBRIDGE_PASSPHRASE")
    if passphrase:
        return Passphrase(passphrase)
    key_file = os.environ.get("WEIGHBRIDGE_KEY_FILE")
    if key_file:
        return KeyFile(Path(key_file).expanduser())
    if interactive:
        return PromptedPassphrase()
    raise WeighbridgeError(
        "Custody needs a key and there is no terminal to ask for a passphrase",
        "Set WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE (a file of 32 random bytes)",
    )


def default_custody_root() -> Path:
    """`WEIGHBRIDGE_CUSTODY_DIR` if set, else `custody/` under WEIGHBRIDGE_HOME (~/.weighbridge)."""
    env = os.environ.get("WEIGHBRIDGE_CUSTODY_DIR")
    return Path(env).expanduser() if env else default_home() / "custody"


# -- the quick path's key file ------------------------------------------------------------------


def default_key_dir() -> Path:
    """`WEIGHBRIDGE_KEY_DIR` if set, else `$XDG_CONFIG_HOME/weighbridge` (~/.config/weighbridge).

    Deliberately not under WEIGHBRIDGE_HOME: a key kept beside the ciphertext protects nothing once
    the data directory is copied, backed up or shared.
    """
    env = os.environ.get("WEIGHBRIDGE_KEY_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"  # XDG: relative is ignored
    return base / "weighbridge"


def default_key_file(home: Path | None = None) -> Path:
    """The quick path's key file for the store in `home` (default: WEIGHBRIDGE_HOME).

    Named after a digest of the resolved home path, so two stores on one machine never share (or
    overwrite) each other's key.
    """
    resolved = (home or default_home()).expanduser().resolve()
    tag = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return default_key_dir() / f"custody-{tag}.key"


def legacy_key_file(home: Path | None = None) -> Path:
    """Where versions before key separation kept the quick path's key: inside WEIGHBRIDGE_HOME."""
    return (home or default_home()).expanduser() / LEGACY_KEY_FILE


KeyOrigin = Literal["env", "default", "legacy", "prompt"]


@dataclass(frozen=True)
class LocalKey:
    """The custody key this process uses, and where it came from (so `rotate` can advise on it)."""

    source: KeySource
    origin: KeyOrigin
    path: Path | None = None


# Each key file is announced once per process, however many vaults it opens.
_ANNOUNCED: set[Path] = set()


def local_key(notice: Callable[[str], None], *, create: bool = True, interactive: bool = False) -> LocalKey:
    """The custody key: WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE when set; otherwise the quick
    path's key file outside the data directory (`default_key_file`), created on first use when
    `create` (intake) — commands that only read custody never create one; with `interactive` they
    may ask for a passphrase instead.

    The fallback keeps one local user encrypted at rest without set-up. It is said once on stderr
    (`notice`), with where the key is, because a team should hold its key elsewhere (a passphrase
    or a key file on another medium). A key left at the old place beside the ciphertext is still
    used, so upgrading loses nothing, with a warning and how to move it.
    """
    if os.environ.get("WEIGHBRIDGE_PASSPHRASE") or os.environ.get("WEIGHBRIDGE_KEY_FILE"):
        return LocalKey(key_source_from_env(interactive=False), "env")
    home = default_home()
    path = default_key_file(home)
    legacy = legacy_key_file(home)
    if not path.exists() and legacy.exists():
        _announce(
            notice,
            legacy,
            f"Warning: using the custody key {legacy}, which sits beside the ciphertext it protects: a copy "
            "of the data directory is enough to decrypt the submitted weights. Move it out "
            f"(`mkdir -p -m 700 {shlex.quote(str(path.parent))} && mv {shlex.quote(str(legacy))} "
            f"{shlex.quote(str(path))}`), or re-key into a new key with `weighbridge custody rotate`. "
            "Teams should set WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE (a key held elsewhere).",
        )
        return LocalKey(KeyFile(legacy), "legacy", legacy)
    if not path.exists():
        if not create:
            return LocalKey(key_source_from_env(interactive=interactive), "prompt")
        created = write_key_file(path, exist_ok=True)
    else:
        created = False
    message = (
        f"{'Created' if created else 'Using'} the custody key {path} (it decrypts the submitted weights; "
        f"kept outside the data directory {home}). Keep it private and backed up; teams should set "
        "WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE to a key held elsewhere."
    )
    if _is_inside(path, home):
        message = (
            f"Warning: the custody key {path} is inside the data directory {home} (WEIGHBRIDGE_KEY_DIR): "
            "a copy of that directory decrypts the weights. Point WEIGHBRIDGE_KEY_DIR elsewhere."
        )
    if legacy.exists():
        message += (
            f" An old key file {legacy} is still in the data directory: once `weighbridge custody verify` "
            f"passes, delete it (`rm {shlex.quote(str(legacy))}`)."
        )
    _announce(notice, path, message)
    return LocalKey(KeyFile(path), "default", path)


def write_key_file(path: Path, *, exist_ok: bool = False) -> bool:
    """Create a key file of 32 random bytes, readable by its owner only (directory 0700 if new).

    Returns whether it was created: with `exist_ok`, a file another process made a moment earlier
    is accepted (and used) rather than overwritten.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        if exist_ok:
            return False
        raise WeighbridgeError(f"{path} already exists", "Give a new path, or leave out --create to use it") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(KEY_BYTES))
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(path.parent)
    return True


def _announce(notice: Callable[[str], None], path: Path, message: str) -> None:
    if path not in _ANNOUNCED:
        _ANNOUNCED.add(path)
        notice(message)


def _is_inside(path: Path, folder: Path) -> bool:
    return path.expanduser().resolve().is_relative_to(folder.expanduser().resolve())


def require_evaluator(actor: Actor, what: str) -> None:
    """Plaintext weights are for the roles that may evaluate; anyone else is refused by name."""
    if not permitted(Action.EVALUATE, actor.roles):
        needed = ", ".join(sorted(RULES[Action.EVALUATE].roles))
        held = ", ".join(sorted(actor.roles)) or "no role"
        raise WeighbridgeError(
            f"{actor.name} may not {what}: that needs the role {needed} ({actor.name} has {held})",
            "Ask an admin for the role, or act as a user who has it (WEIGHBRIDGE_USER_KEY)",
        )


def require_admin(actor: Actor) -> None:
    """Rotating the master key touches every submission's key: an admin's act only."""
    if not actor.has(Role.ADMIN):
        held = ", ".join(sorted(actor.roles)) or "no role"
        raise WeighbridgeError(
            f"{actor.name} may not rotate the custody key: that needs the role admin ({actor.name} has {held})",
            "Ask an admin to run `weighbridge custody rotate`",
        )


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file of a submission. `problem` is None when the file is intact."""

    n: int | None
    path: str
    problem: str | None = None
    reason: str | None = None  # tampered | truncated | trailing | header | key | hash | size | missing
    chunk: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class VerifyResult:
    submission_id: str
    files: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files)


@dataclass(frozen=True)
class AccessEntry:
    at: datetime
    actor: str
    action: str
    submission_id: str | None
    purpose: str
    detail: dict[str, Any]


class CustodyVault:
    """Encrypted custody of submissions' files, with an access log.

    Args:
        store: the database holding submissions and the custody tables.
        root: directory for the ciphertext (created 0700).
        key_source: where the master key's secret comes from (see `key_source_from_env`). It is
            only asked when a key is needed, and the store's record is checked before any data
            is touched, so a wrong secret changes nothing.
        kdf: key-derivation function for a *new* store's passphrase (default: Argon2id, or scrypt);
            an existing store always uses what its record says.
        chunk_bytes: plaintext bytes per encrypted chunk of new blobs.
        tmp_root: where private plaintext directories are made (default: the system temp dir,
            which honours TMPDIR; point it at a RAM-backed tmpfs to keep plaintext off disks).
        actor: who the access log names for deposit and verify when the call passes no `Actor`
            (default: the OS user). Decrypting always names the acting user and their roles.
    """

    def __init__(
        self,
        store: Store,
        root: Path,
        key_source: KeySource,
        *,
        kdf: KdfSpec | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        tmp_root: Path | None = None,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.key_source = key_source
        self.kdf = kdf
        self.chunk_bytes = chunk_bytes
        self.actor = actor or getpass.getuser()
        self.lease_root = Path(tmp_root or tempfile.gettempdir()) / f"weighbridge-custody-{_uid()}"
        self._master: bytes | None = None
        self._check: bytes | None = None  # the record's check value the cached master key matched
        swept = sweep_stale_leases(self.lease_root)
        if swept:
            self._log("sweep", None, "remove plaintext left by a killed process", {"directories": swept})

    def check_key(self) -> None:
        """Unlock the master key now (creating the store's record if this is its first use).

        For callers that must fail on a wrong passphrase *before* writing anything of their own,
        e.g. `submit` checking the key before it adds the submission row.
        """
        self._unlock(create=True)

    # -- deposit ---------------------------------------------------------------------------------
    def deposit(
        self,
        submission_id: str,
        files: Sequence[tuple[Path, ModelFile]],
        *,
        purpose: str = "intake",
        actor: Actor | None = None,
    ) -> list[CustodyObjectRow]:
        """Encrypt a submission's files into custody; each must match its manifest entry.

        Blobs are written to temporary names, synced and renamed, then all rows and the log entry
        are committed in one transaction: a failure leaves no rows and no blobs behind. The
        transaction re-checks the master-key record, so a deposit racing a `rotate` fails instead of
        storing a data key wrapped under the retired key. `actor` names (and signs for) the user.
        """
        submission = self._submission(submission_id)
        manifest = {f.path: f for f in _manifest(submission)}
        given = {mf.path for _, mf in files}
        if given != set(manifest) or len(files) != len(given):
            raise WeighbridgeError(
                f"The files to deposit do not match the manifest of submission {submission.id[:8]} "
                f"(given {sorted(given)}, manifest {sorted(manifest)})",
                "Deposit exactly the submitted files",
            )
        for _, mf in files:
            if manifest[mf.path] != mf:
                raise WeighbridgeError(f"{mf.path} differs from its manifest entry", "Deposit the submitted file")
            _safe_relative(mf.path)
        if self._count_objects(submission.id):
            raise WeighbridgeError(
                f"Submission {submission.id[:8]} is already in custody", "Check it with `weighbridge custody verify`"
            )
        master = self._unlock(create=True)  # before any byte is written: a wrong key changes nothing
        data_key = new_data_key()
        wrapped = wrap_data_key(master, data_key, submission.id.encode())
        folder = self.root / submission.id
        _private_dir(self.root)
        _private_dir(folder)
        written: list[Path] = []
        rows: list[CustodyObjectRow] = []
        try:
            for n, (path, mf) in enumerate(sorted(files, key=lambda pair: pair[1].path)):
                blob = folder / f"{n}{BLOB_SUFFIX}"
                tmp = folder / f".{n}{BLOB_SUFFIX}.{secrets.token_hex(4)}.tmp"
                try:
                    with path.open("rb") as src, _create_private(tmp) as dst:
                        context = _context(submission.id, n, mf.path)
                        sealed = encrypt_stream(src, dst, data_key, context=context, chunk_bytes=self.chunk_bytes)
                        dst.flush()
                        os.fsync(dst.fileno())
                    if (sealed.plaintext_sha256, sealed.plaintext_bytes) != (mf.sha256, mf.bytes):
                        raise WeighbridgeError(
                            f"{path} changed since it was submitted (sha256 {sealed.plaintext_sha256[:12]} ≠ "
                            f"{mf.sha256[:12]})",
                            "Submit the new file as a new submission",
                        )
                    os.replace(tmp, blob)
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(blob)
                rows.append(
                    CustodyObjectRow(
                        submission_id=submission.id,
                        key_id=MASTER_KEY_ID,
                        n=n,
                        path=mf.path,
                        blob=f"{submission.id}/{blob.name}",
                        wrapped_data_key=wrapped,
                        nonce_prefix=sealed.nonce_prefix,
                        chunk_bytes=sealed.chunk_bytes,
                        plaintext_sha256=sealed.plaintext_sha256,
                        plaintext_bytes=sealed.plaintext_bytes,
                        ciphertext_sha256=sealed.ciphertext_sha256,
                        ciphertext_bytes=sealed.ciphertext_bytes,
                    )
                )
            _fsync_dir(folder)
            detail = {"files": len(rows), "bytes": sum(r.plaintext_bytes for r in rows)}
            with self.store.session() as s:
                key_row = s.get(CustodyKeyRow, MASTER_KEY_ID, with_for_update=True)
                if key_row is None or key_row.check_value != self._check:
                    raise WeighbridgeError(
                        "The custody key was rotated while this deposit ran; nothing was stored",
                        "Run the command again with the new key",
                    )
                s.add_all(rows)
                s.add(_log_row(actor.name if actor else self.actor, "deposit", submission.id, purpose, detail))
        except BaseException:
            for blob in written:
                blob.unlink(missing_ok=True)
            raise
        self._ledger("custody.deposit", submission.id, detail | {"purpose": purpose}, actor)
        return rows

    # -- verify ----------------------------------------------------------------------------------
    def verify(
        self, submission_id: str, *, purpose: str = "integrity check", actor: Actor | None = None
    ) -> VerifyResult:
        """Decrypt every blob of a submission (streaming, nothing written) and compare with the
        manifest. The result names each file and what failed; the check is logged either way.

        No role is needed: nothing leaves the process but a verdict per file."""
        submission, objects, master, manifest = self._held(submission_id)
        checks: list[FileCheck] = []
        for obj in objects:
            checks.append(self._check_object(master, submission.id, obj, manifest.get(obj.path)))
        in_custody = {o.path for o in objects}
        for missing in sorted(set(manifest) - in_custody):
            checks.append(FileCheck(None, missing, "the manifest lists it but it is not in custody", "missing"))
        result = VerifyResult(submission.id, tuple(checks))
        detail = {"ok": result.ok, "files": len(checks), "failed": [c.path for c in checks if not c.ok]}
        self._log("verify", submission.id, purpose, detail, actor=actor)
        return result

    def _held(self, submission_id: str) -> tuple[SubmissionRow, list[CustodyObjectRow], bytes, dict[str, ModelFile]]:
        """What reading custody needs: the submission, its blobs (there must be some), the unlocked
        master key and the manifest by path."""
        submission = self._submission(submission_id)
        objects = self._objects(submission.id)
        if not objects:
            raise WeighbridgeError(
                f"Submission {submission.id[:8]} has nothing in custody",
                f"Deposit it first: `weighbridge custody deposit {submission.id[:8]}`",
            )
        master = self._unlock(create=False)
        return submission, objects, master, {f.path: f for f in _manifest(submission)}

    def _check_object(
        self, master: bytes, submission_id: str, obj: CustodyObjectRow, expected: ModelFile | None
    ) -> FileCheck:
        if expected is None:
            return FileCheck(obj.n, obj.path, "in custody but not in the submission's manifest", "missing")
        blob = self.root / obj.blob
        try:
            data_key = unwrap_data_key(master, obj.wrapped_data_key, submission_id.encode())
            with blob.open("rb") as src:
                opened = decrypt_stream(src, None, data_key, context=_context(submission_id, obj.n, obj.path))
        except FileNotFoundError:
            return FileCheck(obj.n, obj.path, f"the blob {obj.blob} is missing", "missing")
        except CustodyError as exc:
            return FileCheck(obj.n, obj.path, exc.problem, exc.reason, exc.chunk)
        if opened.nonce_prefix != obj.nonce_prefix or opened.chunk_bytes != obj.chunk_bytes:
            return FileCheck(obj.n, obj.path, "the blob header differs from its custody record", "header")
        if opened.plaintext_bytes != expected.bytes:
            problem = f"decrypts to {opened.plaintext_bytes} bytes, the manifest says {expected.bytes}"
            return FileCheck(obj.n, obj.path, problem, "size")
        if opened.plaintext_sha256 != expected.sha256:
            return FileCheck(
                obj.n,
                obj.path,
                f"decrypts to sha256 {opened.plaintext_sha256[:16]}…, the manifest says {expected.sha256[:16]}…",
                "hash",
            )
        return FileCheck(obj.n, obj.path)

    # -- materialize -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def materialize(self, submission_id: str, purpose: str, actor: Actor) -> Iterator[Path]:
        """Decrypt a submission into a private temporary directory for the `with` block.

        Only for a user whose role may evaluate (`permitted(Action.EVALUATE, ...)`) and a stated
        purpose; a refusal decrypts nothing and leaves an access-log row `denied`. Files appear at
        their manifest paths under the yielded directory (0700; files 0600), each checked against
        the manifest before the block starts. The directory is removed when the block ends, also on
        exceptions, Ctrl-C and (in the main thread) SIGTERM. Both the access and the removal are
        logged, naming the user, their roles and the purpose, and signed by the user in the ledger.
        """
        if not purpose.strip():
            raise WeighbridgeError("Decrypting weights needs a purpose", "Say why, e.g. 'evaluate hazards suite'")
        submission = self._submission(submission_id)
        roles = sorted(actor.roles)
        try:
            require_evaluator(actor, f"decrypt the weights of submission {submission.id[:8]}")
        except WeighbridgeError as refused:
            # The custodian wants to see refused attempts too; only the access log, not the ledger,
            # because nothing happened to the submission.
            with self.store.session() as s:
                s.add(_log_row(actor.name, "denied", submission.id, purpose, {"roles": roles, "why": refused.problem}))
            raise
        submission, objects, master, manifest = self._held(submission.id)
        detail = {"files": [o.path for o in objects], "roles": roles}
        self._log("materialize", submission.id, purpose, detail, actor=actor)
        started = time.monotonic()
        with _terminate_as_exit(), _Lease(self.lease_root) as folder:
            try:
                for obj in objects:
                    self._decrypt_object(master, submission.id, obj, manifest.get(obj.path), folder)
                yield folder
            finally:
                released = {"seconds": round(time.monotonic() - started, 3), "roles": roles}
                _remove_tree(folder)  # before the log row, so the row states a fact (the lease also does it)
                self._log("release", submission.id, purpose, released, actor=actor)

    def _decrypt_object(
        self, master: bytes, submission_id: str, obj: CustodyObjectRow, expected: ModelFile | None, folder: Path
    ) -> None:
        target = folder / _safe_relative(obj.path)
        for parent in reversed(target.relative_to(folder).parents):
            _private_dir(folder / parent)
        data_key = unwrap_data_key(master, obj.wrapped_data_key, submission_id.encode())
        try:
            with (self.root / obj.blob).open("rb") as src, _create_private(target) as dst:
                opened = decrypt_stream(src, dst, data_key, context=_context(submission_id, obj.n, obj.path))
        except FileNotFoundError:
            raise WeighbridgeError(
                f"The custody blob of {obj.path} is missing", f"Run `weighbridge custody verify {submission_id[:8]}`"
            ) from None
        if expected is None or (opened.plaintext_sha256, opened.plaintext_bytes) != (expected.sha256, expected.bytes):
            raise WeighbridgeError(
                f"{obj.path} decrypts to bytes that differ from the manifest",
                f"Run `weighbridge custody verify {submission_id[:8]}`",
            )

    # -- access log ------------------------------------------------------------------------------
    def access_log(self, submission_id: str | None = None) -> list[AccessEntry]:
        return read_access_log(self.store, submission_id)

    # -- store access (repository methods for the custody tables) --------------------------------
    def _submission(self, submission_id: str) -> SubmissionRow:
        row = self.store.get_submission(submission_id)
        if row is None:
            row = self.store.find_submission(submission_id)  # accept a unique prefix too
        return row

    def _objects(self, submission_id: str) -> list[CustodyObjectRow]:
        with self.store.session() as s:
            query = select(CustodyObjectRow).where(CustodyObjectRow.submission_id == submission_id)
            return list(s.scalars(query.order_by(CustodyObjectRow.n)).all())

    def _count_objects(self, submission_id: str) -> int:
        with self.store.session() as s:
            query = select(func.count()).select_from(CustodyObjectRow)
            return s.scalar(query.where(CustodyObjectRow.submission_id == submission_id)) or 0

    def _key_record(self) -> MasterKeyRecord | None:
        with self.store.session() as s:
            row = s.get(CustodyKeyRow, MASTER_KEY_ID)
            if row is None:
                return None
            kdf = KdfSpec(row.kdf, json.loads(row.kdf_params_json))  # type: ignore[arg-type]
            return MasterKeyRecord(kind=row.kind, kdf=kdf, salt=row.salt, check=row.check_value)  # type: ignore[arg-type]

    def _unlock(self, *, create: bool) -> bytes:
        """The master key, checked against the store's record; the first deposit creates the record."""
        if self._master is not None:
            return self._master
        record = self._key_record()
        if record is None:
            if not create:
                raise WeighbridgeError("This store has no custody key yet", "Deposit a submission first")
            record, master = new_master_key(self.key_source, self.kdf)
            try:
                with self.store.session() as s:
                    s.add(
                        CustodyKeyRow(
                            id=MASTER_KEY_ID,
                            kind=record.kind,
                            kdf=record.kdf.name,
                            kdf_params_json=json.dumps(record.kdf.params, sort_keys=True),
                            salt=record.salt,
                            check_value=record.check,
                        )
                    )
            except IntegrityError:
                # Another process initialised the store meanwhile: its record wins; check against it.
                existing = self._key_record()
                assert existing is not None
                record, master = existing, self._open(existing)
        else:
            master = self._open(record)
        self._master, self._check = master, record.check
        return master

    def _open(self, record: MasterKeyRecord) -> bytes:
        """`unlock`, saying when the key was last rotated if the given one does not fit: a retired
        key is the likeliest reason, and "does not unlock" alone would send people hunting."""
        self.key_source.secret(new=False)  # an unreadable key file or empty passphrase: its own error
        try:
            return unlock(self.key_source, record)
        except WeighbridgeError as exc:
            rotation = self._last_rotation()
            if rotation is None:
                raise
            raise WeighbridgeError(
                f"{exc.problem}: the store's master key was rotated on {rotation.at:%Y-%m-%d %H:%M} UTC by "
                f"{rotation.actor}, and a key from before then no longer opens it",
                f"Use the key it was rotated to ({_describe(rotation.detail.get('new', {}))}). {exc.fix}",
            ) from None

    def _last_rotation(self) -> AccessEntry | None:
        with self.store.session() as s:
            row = s.scalars(
                select(AccessLogRow).where(AccessLogRow.action == "rotate").order_by(AccessLogRow.id.desc()).limit(1)
            ).first()
        return _entry(row) if row else None

    # -- rotation ----------------------------------------------------------------------------------
    def rotate(
        self,
        new_source: KeySource,
        actor: Actor,
        *,
        kdf: KdfSpec | None = None,
        purpose: str = "rotate the custody master key",
    ) -> Rotation:
        """Re-wrap every submission's data key under a new master key from `new_source`.

        Only the wrapped keys and the master-key record change, in one transaction with the access
        log row: a failure anywhere leaves the old key working and the new one unused. The blobs
        are not touched (they are sealed under the data keys, which stay the same), so rotating
        a store of any size takes a moment. Afterwards only the new key opens the store.

        Args:
            new_source: the new key's secret (a key file, or a passphrase derived with `kdf`, by
                default this vault's KDF setting or Argon2id).
            actor: who rotates; must hold the admin role. Recorded (name, roles) in the access log
                and, signed, in the ledger: never any key material.
        """
        require_admin(actor)
        old_record = self._key_record()
        if old_record is None:
            raise WeighbridgeError(
                "This store has no custody key yet: there is nothing to rotate", "Deposit a submission first"
            )
        old_master = self._unlock(create=False)  # whoever rotates must hold the current key
        new_record, new_master = new_master_key(new_source, kdf or self.kdf)
        if new_source.kind == old_record.kind and _opens(new_source, old_record):
            raise WeighbridgeError(
                "The new custody key is the current one: rotating to it would change nothing",
                "Give a new key file (--new-key-file PATH --create) or a different passphrase",
            )
        rewrapped: dict[str, bytes] = {}
        files = 0
        with self.store.session() as s:
            key_row = s.get(CustodyKeyRow, MASTER_KEY_ID, with_for_update=True)
            if key_row is None or key_row.check_value != old_record.check:
                raise WeighbridgeError(
                    "The custody key was rotated by someone else meanwhile; nothing was changed",
                    "Run the command again with the current key",
                )
            objects = s.scalars(select(CustodyObjectRow).order_by(CustodyObjectRow.submission_id, CustodyObjectRow.n))
            for obj in objects:
                sid = obj.submission_id
                if sid not in rewrapped:
                    try:
                        data_key = unwrap_data_key(old_master, obj.wrapped_data_key, sid.encode())
                    except CustodyError:
                        raise WeighbridgeError(
                            f"The data key of submission {sid[:8]} does not open under the current master key; "
                            "nothing was rotated",
                            f"Run `weighbridge custody verify {sid[:8]}` and restore its record from a backup",
                        ) from None
                    rewrapped[sid] = wrap_data_key(new_master, data_key, sid.encode())
                obj.wrapped_data_key = rewrapped[sid]
                files += 1
            key_row.kind = new_record.kind
            key_row.kdf = new_record.kdf.name
            key_row.kdf_params_json = json.dumps(new_record.kdf.params, sort_keys=True)
            key_row.salt = new_record.salt
            key_row.check_value = new_record.check
            key_row.created_at = utcnow()
            rotation = Rotation(
                old=_key_info(old_record), new=_key_info(new_record), data_keys=len(rewrapped), files=files
            )
            detail = rotation.evidence() | {"roles": sorted(actor.roles)}
            s.add(_log_row(actor.name, "rotate", None, purpose, detail))
        self.key_source, self._master, self._check = new_source, new_master, new_record.check
        record_as(self.store, actor, "custody.rotate", ROTATE_SUBJECT, detail | {"purpose": purpose})
        return rotation

    def _log(
        self,
        action: str,
        submission_id: str | None,
        purpose: str,
        detail: dict[str, Any],
        actor: Actor | None = None,
    ) -> None:
        with self.store.session() as s:
            s.add(_log_row(actor.name if actor else self.actor, action, submission_id, purpose, detail))
        if submission_id is not None:  # a sweep of stale plaintext is the system's, not a user's
            self._ledger(f"custody.{action}", submission_id, detail | {"purpose": purpose}, actor)

    def _ledger(self, action: str, subject: str, evidence: dict[str, Any], actor: Actor | None) -> None:
        """Signed by `actor` when the caller named one, else by the process's current user."""
        if actor is not None:
            record_as(self.store, actor, action, subject, evidence)
        else:
            record(self.store, action, subject, evidence)


@dataclass(frozen=True)
class Rotation:
    """What a key rotation did: the old and new key's kind and KDF, and how much was re-wrapped."""

    old: dict[str, Any]
    new: dict[str, Any]
    data_keys: int  # one per submission in custody
    files: int

    def evidence(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "data_keys": self.data_keys, "files": self.files}


def _key_info(record: MasterKeyRecord) -> dict[str, Any]:
    """A key record minus everything secret or key-derived: kind, KDF and its cost parameters."""
    return {"kind": record.kind, "kdf": record.kdf.name, "kdf_params": dict(record.kdf.params)}


def _describe(info: dict[str, Any]) -> str:
    if info.get("kind") == "keyfile":
        return "a key file: WEIGHBRIDGE_KEY_FILE"
    if info.get("kind") == "passphrase":
        return "a passphrase: WEIGHBRIDGE_PASSPHRASE or the prompt"
    return "the new key"


def _opens(source: KeySource, record: MasterKeyRecord) -> bool:
    try:
        unlock(source, record)
    except WeighbridgeError:
        return False
    return True


def read_access_log(store: Store, submission_id: str | None = None) -> list[AccessEntry]:
    """The access log, oldest first; one submission's entries when `submission_id` is given.

    A function, not a vault method only, because reading the log needs no key.
    """
    with store.session() as s:
        query = select(AccessLogRow).order_by(AccessLogRow.id)
        if submission_id is not None:
            query = query.where(AccessLogRow.submission_id == submission_id)
        rows = s.scalars(query).all()
    return [_entry(r) for r in rows]


def _entry(r: AccessLogRow) -> AccessEntry:
    return AccessEntry(r.at, r.actor, r.action, r.submission_id, r.purpose, json.loads(r.detail or "{}"))


def has_custody(store: Store, submission_id: str) -> bool:
    """Whether the submission's files are held in custody (endpoints and old submissions are not)."""
    with store.session() as s:
        query = select(CustodyObjectRow.id).where(CustodyObjectRow.submission_id == submission_id).limit(1)
        return s.scalar(query) is not None


def submitted_files(submission: SubmissionRow) -> list[tuple[Path, ModelFile]]:
    """Where each manifest file of a submission is on disk now: the `source` file itself for a
    one-file model, `source/<path>` for a model directory."""
    files = _manifest(submission)
    if submission.endpoint_json or not files:
        raise WeighbridgeError(
            f"Submission {submission.id[:8]} is an endpoint: it has no files to keep in custody",
            "Only submitted weights go into custody",
        )
    source = Path(submission.source)
    if source.is_file() and len(files) == 1:
        return [(source, files[0])]
    if source.is_dir():
        return [(source / _safe_relative(f.path), f) for f in files]
    raise WeighbridgeError(
        f"The files of submission {submission.id[:8]} are gone: {source}", "Restore them or submit the model again"
    )


def _log_row(actor: str, action: str, submission_id: str | None, purpose: str, detail: dict[str, Any]) -> AccessLogRow:
    return AccessLogRow(
        actor=actor[:255],
        action=action,
        submission_id=submission_id,
        purpose=purpose,
        detail=json.dumps(detail, sort_keys=True),
    )


def _manifest(submission: SubmissionRow) -> list[ModelFile]:
    return [ModelFile(**f) for f in json.loads(submission.manifest_json)]


def _context(submission_id: str, n: int, path: str) -> bytes:
    """Bound into every chunk: a blob opens only as file n (at `path`) of this submission."""
    return f"{submission_id}\0{n}\0{path}".encode()


def _safe_relative(path: str) -> PurePosixPath:
    """A manifest path that stays inside the directory it is written to."""
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise WeighbridgeError(f"Unsafe path in the manifest: {path!r}", "Submit the model again")
    return rel


# -- private files and directories --------------------------------------------------------------


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


def _private_dir(path: Path) -> None:
    """Create (or accept) a directory only its owner can enter; refuse one others could read or
    that is not ours (in a shared /tmp, someone else could have made it first to watch it)."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise WeighbridgeError(f"{path} is not a directory", "Move it away")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise WeighbridgeError(f"{path} belongs to another user", "Remove it, or choose another directory")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


@contextlib.contextmanager
def _create_private(path: Path) -> Iterator[Any]:
    """A new file readable by its owner only; never follows or reuses an existing name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        yield fh


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


class _Lease:
    """A private plaintext directory `<lease_root>/<token>/`, held by an flock on `<token>.lock`.

    The lock is what tells a sweeper the owner is alive: the kernel drops it when the process
    dies, however it dies, and (unlike a pid) it cannot be inherited by an unrelated process.
    """

    def __init__(self, lease_root: Path) -> None:
        self.lease_root = lease_root
        self._fd: int | None = None
        self.folder: Path | None = None
        self.lock: Path | None = None

    def __enter__(self) -> Path:
        import fcntl

        _private_dir(self.lease_root)
        token = secrets.token_hex(8)
        self.lock = self.lease_root / f"{token}.lock"
        self._fd = os.open(self.lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.folder = self.lease_root / token
        self.folder.mkdir(mode=0o700)
        return self.folder

    def __exit__(self, *exc: object) -> None:
        if self.folder is not None:
            _remove_tree(self.folder)
        if self.lock is not None:
            self.lock.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)


def sweep_stale_leases(lease_root: Path, min_age_s: float = SWEEP_MIN_AGE_S) -> int:
    """Remove plaintext directories whose process died without cleaning up. Returns how many."""
    if not lease_root.is_dir():
        return 0
    import fcntl

    swept = 0
    now = time.time()
    for entry in lease_root.iterdir():
        if entry.suffix == ".lock" or not entry.is_dir() or entry.is_symlink():
            continue
        lock = entry.with_name(entry.name + ".lock")
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        fd: int | None
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # the lock goes first on creation and last on removal: no lock, no owner
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        continue  # alive
                    raise
            if age < min_age_s:
                continue
            _remove_tree(entry)
            lock.unlink(missing_ok=True)
            swept += 1
        finally:
            if fd is not None:
                os.close(fd)
    return swept


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While plaintext exists, turn SIGTERM into SystemExit so `finally` blocks remove it.

    Only from the main thread (Python delivers signals there) and only when no one else has set a
    SIGTERM handler; otherwise the sweep at next start is the fallback, as for SIGKILL.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if not in_main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
