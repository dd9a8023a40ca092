"""Custody of submitted weights: encrypted at rest, checked on demand, decrypted only for a purpose.

`CustodyVault` is the one entry point. It keeps ciphertext under `root/<submission>/<n>.wbc`, the
rows that describe it in the store (`custody_objects`, `custody_keys`), and an `access_log` row for
every deposit, verification and decryption: who, what, why, when.

Plaintext leaves custody only through `materialize`, into a private temporary directory that is
removed when the `with` block ends, whatever way it ends. A process killed outright (SIGKILL)
cannot clean up, so those directories live under one well-known per-user directory and the next
vault to start sweeps the ones whose owner is gone.

There is deliberately no "export" operation: exporting plaintext is for the submitter role, which
arrives with roles in a later issue.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import secrets
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from weighbridge.domain import ModelFile
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.custody import (
    DEFAULT_CHUNK_BYTES,
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
from weighbridge.services.audit import record
from weighbridge.store.custody_schema import AccessLogRow, CustodyKeyRow, CustodyObjectRow
from weighbridge.store.db import Store
from weighbridge.store.schema import SubmissionRow

MASTER_KEY_ID = 1  # one master key per store for now; rotation would add rows
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
    from weighbridge.store.db import default_home

    env = os.environ.get("WEIGHBRIDGE_CUSTODY_DIR")
    return Path(env).expanduser() if env else default_home() / "custody"


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
        actor: who is recorded for deposit and verify (default: the OS user; identities later).
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
        self, submission_id: str, files: Sequence[tuple[Path, ModelFile]], *, purpose: str = "intake"
    ) -> list[CustodyObjectRow]:
        """Encrypt a submission's files into custody; each must match its manifest entry.

        Blobs are written to temporary names, synced and renamed, then all rows and the log entry
        are committed in one transaction: a failure leaves no rows and no blobs behind.
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
                s.add_all(rows)
                s.add(_log_row(self.actor, "deposit", submission.id, purpose, detail))
        except BaseException:
            for blob in written:
                blob.unlink(missing_ok=True)
            raise
        record(self.store, "custody.deposit", submission.id, detail | {"purpose": purpose})
        return rows

    # -- verify ----------------------------------------------------------------------------------
    def verify(self, submission_id: str, *, purpose: str = "integrity check") -> VerifyResult:
        """Decrypt every blob of a submission (streaming, nothing written) and compare with the
        manifest. The result names each file and what failed; the check is logged either way."""
        submission, objects, master, manifest = self._held(submission_id)
        checks: list[FileCheck] = []
        for obj in objects:
            checks.append(self._check_object(master, submission.id, obj, manifest.get(obj.path)))
        in_custody = {o.path for o in objects}
        for missing in sorted(set(manifest) - in_custody):
            checks.append(FileCheck(None, missing, "the manifest lists it but it is not in custody", "missing"))
        result = VerifyResult(submission.id, tuple(checks))
        detail = {"ok": result.ok, "files": len(checks), "failed": [c.path for c in checks if not c.ok]}
        self._log("verify", submission.id, purpose, detail)
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
    def materialize(self, submission_id: str, purpose: str, actor: str) -> Iterator[Path]:
        """Decrypt a submission into a private temporary directory for the `with` block.

        Files appear at their manifest paths under the yielded directory (0700; files 0600), each
        checked against the manifest before the block starts. The directory is removed when the
        block ends, also on exceptions, Ctrl-C and (in the main thread) SIGTERM. Both the access
        and the removal are logged.
        """
        if not purpose.strip():
            raise WeighbridgeError("Decrypting weights needs a purpose", "Say why, e.g. 'evaluate hazards suite'")
        submission, objects, master, manifest = self._held(submission_id)
        self._log("materialize", submission.id, purpose, {"files": [o.path for o in objects]}, actor=actor)
        started = time.monotonic()
        with _terminate_as_exit(), _Lease(self.lease_root) as folder:
            try:
                for obj in objects:
                    self._decrypt_object(master, submission.id, obj, manifest.get(obj.path), folder)
                yield folder
            finally:
                detail = {"seconds": round(time.monotonic() - started, 3)}
                _remove_tree(folder)  # before the log row, so the row states a fact (the lease also does it)
                self._log("release", submission.id, purpose, detail, actor=actor)

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
                master = unlock(self.key_source, existing)
        else:
            master = unlock(self.key_source, record)
        self._master = master
        return master

    def _log(
        self, action: str, submission_id: str | None, purpose: str, detail: dict[str, Any], actor: str | None = None
    ) -> None:
        with self.store.session() as s:
            s.add(_log_row(actor or self.actor, action, submission_id, purpose, detail))
        if submission_id is not None:  # a sweep of stale plaintext is the system's, not a user's
            record(self.store, f"custody.{action}", submission_id, detail | {"purpose": purpose})


def read_access_log(store: Store, submission_id: str | None = None) -> list[AccessEntry]:
    """The access log, oldest first; one submission's entries when `submission_id` is given.

    A function, not a vault method only, because reading the log needs no key.
    """
    with store.session() as s:
        query = select(AccessLogRow).order_by(AccessLogRow.id)
        if submission_id is not None:
            query = query.where(AccessLogRow.submission_id == submission_id)
        rows = s.scalars(query).all()
    return [
        AccessEntry(r.at, r.actor, r.action, r.submission_id, r.purpose, json.loads(r.detail or "{}")) for r in rows
    ]


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
