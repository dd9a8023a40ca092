"""Custody: weights are ciphertext at rest, tampering is pinpointed, keys are checked before data
is touched, plaintext exists only inside `materialize`, and every access is logged.

Small chunk sizes give many chunks from small files; a cheap scrypt keeps key derivation fast. The
real default model is deposited and verified once, with the production chunk size and KDF.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from weighbridge.domain import ModelFile, ModelRef
from weighbridge.errors import WeighbridgeError
from weighbridge.intake.custody import (
    HEADER,
    TAG_BYTES,
    CustodyError,
    KdfSpec,
    KeyFile,
    Passphrase,
    PromptedPassphrase,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
)
from weighbridge.intake.manifest import build_manifest
from weighbridge.ledger.signing import KeySigner
from weighbridge.services.custody import (
    CustodyVault,
    key_source_from_env,
    submitted_files,
    sweep_stale_leases,
)
from weighbridge.services.identity import Actor
from weighbridge.store.custody_schema import AccessLogRow, CustodyKeyRow, CustodyObjectRow
from weighbridge.store.db import Store
from weighbridge.store.schema import SubmissionRow
from weighbridge.workflow.states import Role

CHUNK = 1024
CHEAP_KDF = KdfSpec("scrypt", {"n": 1 << 10, "r": 8, "p": 1})
PASS = Passphrase("correct horse battery staple")


def person(name: str, *roles: Role) -> Actor:
    """A user with their own signing key (the ledger registers it on first use)."""
    return Actor(name, frozenset(roles or (Role.EVALUATOR,)), KeySigner.generate())


BOB = person("bob")


# The store, root and tmp_root fixtures: tests/custody_fixtures.py.


VaultFactory = Callable[..., CustodyVault]


@pytest.fixture
def vault(store: Store, root: Path, tmp_root: Path) -> VaultFactory:
    def make(source: object = PASS, **kw: object) -> CustodyVault:
        options: dict[str, object] = {"kdf": CHEAP_KDF, "chunk_bytes": CHUNK, "tmp_root": tmp_root, "actor": "alice"}
        options.update(kw)
        return CustodyVault(store, root, source, **options)  # type: ignore[arg-type]

    return make


def submit_dir(
    store: Store, folder: Path, files: dict[str, bytes]
) -> tuple[SubmissionRow, list[tuple[Path, ModelFile]]]:
    """A model directory submission, as intake records one (source = the directory)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    manifest = build_manifest([folder / n for n in files], root=folder)
    row = store.add_submission(ModelRef(folder.name, "hf", manifest, path=str(folder)), source=str(folder))
    return row, submitted_files(row)


def blob_of(store: Store, root: Path, submission_id: str, path: str) -> Path:
    with store.session() as s:
        obj = s.scalars(
            select(CustodyObjectRow).where(
                CustodyObjectRow.submission_id == submission_id, CustodyObjectRow.path == path
            )
        ).one()
        return root / obj.blob


def counts(store: Store) -> dict[str, int]:
    with store.session() as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0
            for t in (AccessLogRow, CustodyKeyRow, CustodyObjectRow, SubmissionRow)
        }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the crypto core ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK, 5 * CHUNK + 17])
def test_round_trip_streams_every_size(size: int) -> None:
    data = os.urandom(size)
    key = new_data_key()
    sealed_buf = io.BytesIO()
    sealed = encrypt_stream(io.BytesIO(data), sealed_buf, key, context=b"ctx", chunk_bytes=CHUNK)
    blob = sealed_buf.getvalue()
    assert sealed.chunks == max(1, -(-size // CHUNK))
    assert len(blob) == sealed.ciphertext_bytes == HEADER.size + size + sealed.chunks * TAG_BYTES
    assert sealed.plaintext_sha256 == hashlib.sha256(data).hexdigest()
    assert sealed.ciphertext_sha256 == hashlib.sha256(blob).hexdigest()
    plain = io.BytesIO()
    opened = decrypt_stream(io.BytesIO(blob), plain, key, context=b"ctx")
    assert plain.getvalue() == data
    assert (opened.plaintext_sha256, opened.plaintext_bytes, opened.chunks) == (
        sealed.plaintext_sha256,
        size,
        sealed.chunks,
    )


def _seal(data: bytes, key: bytes, context: bytes = b"f") -> bytes:
    buf = io.BytesIO()
    encrypt_stream(io.BytesIO(data), buf, key, context=context, chunk_bytes=CHUNK)
    return buf.getvalue()


def _open(blob: bytes, key: bytes, context: bytes = b"f") -> CustodyError:
    with pytest.raises(CustodyError) as info:
        decrypt_stream(io.BytesIO(blob), None, key, context=context)
    return info.value


def _chunks(blob: bytes) -> list[bytes]:
    body = blob[HEADER.size :]
    step = CHUNK + TAG_BYTES
    return [body[i : i + step] for i in range(0, len(body), step)]


def test_truncation_reordering_swapping_and_appending_are_detected() -> None:
    key = new_data_key()
    data = os.urandom(4 * CHUNK + 100)  # 5 chunks, the last one short
    blob = _seal(data, key)
    header, chunks = blob[: HEADER.size], _chunks(blob)
    assert len(chunks) == 5

    cut = _open(header + b"".join(chunks[:3]), key)  # cut at a chunk boundary
    assert (cut.reason, cut.chunk) == ("truncated", 3)
    assert _open(blob[:-7], key).reason == "tampered"  # cut inside the last chunk
    assert _open(blob[: HEADER.size - 1], key).reason == "truncated"
    assert _open(header, key).reason == "truncated"

    swapped = _open(header + b"".join([chunks[0], chunks[2], chunks[1], *chunks[3:]]), key)
    assert (swapped.reason, swapped.chunk) == ("tampered", 1)
    dropped = _open(header + b"".join([chunks[0], *chunks[2:]]), key)
    assert (dropped.reason, dropped.chunk) == ("tampered", 1)

    # Same data key, another file: its chunk 1 does not fit at position 1 of this one.
    other = _chunks(_seal(os.urandom(4 * CHUNK), key))
    foreign = _open(header + b"".join([chunks[0], other[1], *chunks[2:]]), key)
    assert (foreign.reason, foreign.chunk) == ("tampered", 1)

    appended = _open(blob + chunks[-1], key)
    assert appended.reason in ("trailing", "tampered")
    assert _open(blob + b"\0" * 40, key).reason in ("trailing", "tampered")

    assert _open(blob, key, context=b"another file").reason == "tampered"  # a whole blob moved
    assert _open(blob, new_data_key()).reason == "tampered"
    assert _open(b"XXX" + blob[3:], key).reason == "header"
    # The header is authenticated too: a changed nonce prefix fails at chunk 0.
    assert _open(blob[: HEADER.size - 1] + b"\xff" + blob[HEADER.size :], key).chunk == 0


def test_a_final_chunk_that_ends_early_is_reported_as_truncation() -> None:
    key = new_data_key()
    blob = _seal(os.urandom(3 * CHUNK), key)  # exactly 3 full chunks; the third is final
    header, chunks = blob[: HEADER.size], _chunks(blob)
    err = _open(header + chunks[0] + chunks[1], key)
    assert (err.reason, err.chunk) == ("truncated", 2)
    assert "truncated" in err.message


# -- the vault ----------------------------------------------------------------------------------


def test_stored_blobs_and_database_hold_no_window_of_the_plaintext(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    plain = {"model.safetensors": os.urandom(96 * 1024), "sub/extra.bin": os.urandom(3 * CHUNK + 5)}
    row, files = submit_dir(store, tmp_path / "model", plain)
    vault().deposit(row.id, files)
    store.close()
    stored = b"".join(snapshot(root).values())
    for name in ("wb.db", "wb.db-wal", "wb.db-shm"):
        if (tmp_path / name).exists():
            stored += (tmp_path / name).read_bytes()
    assert len(stored) > sum(len(d) for d in plain.values())
    # Every 64-byte window of the plaintext contains a whole 32-byte block aligned at a multiple
    # of 32, so if no aligned 32-byte block occurs anywhere in the store, no 64-byte window does.
    for data in plain.values():
        for offset in range(0, len(data) - 31, 32):
            assert stored.find(data[offset : offset + 32]) == -1, offset


def test_verify_passes_then_names_the_file_whose_byte_was_flipped(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(5 * CHUNK), "b.bin": os.urandom(2 * CHUNK)})
    v = vault()
    v.deposit(row.id, files)
    result = v.verify(row.id)
    assert result.ok and [f.path for f in result.files] == ["a.bin", "b.bin"]

    blob = blob_of(store, root, row.id, "b.bin")
    data = bytearray(blob.read_bytes())
    data[HEADER.size + CHUNK + TAG_BYTES + 10] ^= 0x01  # one bit in chunk 1 of b.bin
    blob.write_bytes(bytes(data))
    result = v.verify(row.id)
    assert not result.ok
    good, bad = result.files
    assert good.ok and good.path == "a.bin"
    assert (bad.path, bad.reason, bad.chunk) == ("b.bin", "tampered", 1)
    assert "Chunk 1" in (bad.problem or "")


def test_verify_reports_a_missing_or_truncated_blob(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(3 * CHUNK), "b.bin": os.urandom(10)})
    v = vault()
    v.deposit(row.id, files)
    a = blob_of(store, root, row.id, "a.bin")
    a.write_bytes(a.read_bytes()[: HEADER.size + 2 * (CHUNK + TAG_BYTES)])
    blob_of(store, root, row.id, "b.bin").unlink()
    checks = {f.path: f for f in v.verify(row.id).files}
    assert (checks["a.bin"].reason, checks["a.bin"].chunk) == ("truncated", 2)
    assert checks["b.bin"].reason == "missing"


def test_deposit_refuses_a_file_changed_since_submission_and_leaves_nothing(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(2 * CHUNK), "b.bin": os.urandom(CHUNK)})
    (tmp_path / "m" / "b.bin").write_bytes(os.urandom(CHUNK))
    before = counts(store)
    with pytest.raises(WeighbridgeError, match="changed since it was submitted"):
        vault().deposit(row.id, files)
    after = counts(store)
    assert after["custody_objects"] == before["custody_objects"] == 0
    assert after["access_log"] == before["access_log"]
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(
    store: Store, root: Path, tmp_path: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(3 * CHUNK)})
    vault().deposit(row.id, files)
    second, second_files = submit_dir(store, tmp_path / "n", {"c.bin": os.urandom(CHUNK)})
    rows_before, blobs_before = counts(store), snapshot(root)

    wrong = vault(Passphrase("tr0ub4dor&3"))
    attempts: list[Callable[[], object]] = [
        wrong.check_key,
        lambda: wrong.verify(row.id),
        lambda: wrong.deposit(second.id, second_files),
        lambda: wrong.materialize(row.id, "evaluate", person("mallory")).__enter__(),
    ]
    for attempt in attempts:
        with pytest.raises(WeighbridgeError) as info:
            attempt()
        assert info.value.problem == "The passphrase does not unlock this custody store"
    assert counts(store) == rows_before
    assert snapshot(root) == blobs_before
    with pytest.raises(WeighbridgeError, match="locked with a passphrase, not a key file"):
        key = tmp_path / "key"
        key.write_bytes(os.urandom(32))
        vault(KeyFile(key)).verify(row.id)
    assert counts(store) == rows_before


@pytest.mark.parametrize("encoding", ["raw", "base64"])
def test_key_file_source(store: Store, root: Path, tmp_path: Path, vault: VaultFactory, encoding: str) -> None:
    secret = os.urandom(32)
    key_file = tmp_path / "custody.key"
    key_file.write_bytes(secret if encoding == "raw" else base64.b64encode(secret) + b"\n")
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(2 * CHUNK + 3)})
    vault(KeyFile(key_file)).deposit(row.id, files)
    assert vault(KeyFile(key_file)).verify(row.id).ok  # a fresh vault re-reads the key file
    with store.session() as s:
        record = s.get_one(CustodyKeyRow, 1)
        assert (record.kind, record.kdf) == ("keyfile", "none")

    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    with pytest.raises(WeighbridgeError, match="The key file does not unlock this custody store"):
        vault(KeyFile(other)).verify(row.id)
    with pytest.raises(WeighbridgeError, match="locked with a key file, not a passphrase"):
        vault(PASS).verify(row.id)
    bad = tmp_path / "bad.key"
    bad.write_text("too short")
    with pytest.raises(WeighbridgeError, match="neither 32 raw bytes nor 32 bytes in base64"):
        vault(KeyFile(bad)).verify(row.id)


def test_passphrase_record_holds_kdf_parameters_and_salt_not_the_key(
    store: Store, tmp_path: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": b"x"})
    vault().deposit(row.id, files)
    with store.session() as s:
        record = s.get_one(CustodyKeyRow, 1)
        assert (record.kind, record.kdf) == ("passphrase", "scrypt")
        assert '"n": 1024' in record.kdf_params_json
        assert len(record.salt) == 16


def test_materialize_decrypts_privately_and_removes_the_directory(
    store: Store, tmp_path: Path, tmp_root: Path, vault: VaultFactory
) -> None:
    plain = {"a.bin": os.urandom(4 * CHUNK + 1), "tok/vocab.json": b'{"x": 1}'}
    row, files = submit_dir(store, tmp_path / "m", plain)
    v = vault()
    v.deposit(row.id, files)
    with v.materialize(row.id, "evaluate hazards", BOB) as folder:
        assert snapshot(folder) == plain
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "a.bin").stat().st_mode) == 0o600
        assert folder.is_relative_to(tmp_root)
        kept = folder
    assert not kept.exists()

    with pytest.raises(RuntimeError, match="boom"), v.materialize(row.id, "evaluate", BOB) as folder:
        kept = folder
        raise RuntimeError("boom")
    assert not kept.exists()

    with pytest.raises(KeyboardInterrupt), v.materialize(row.id, "evaluate", BOB) as folder:
        kept = folder
        raise KeyboardInterrupt
    assert not kept.exists()
    lease_root = kept.parent
    assert list(lease_root.iterdir()) == []  # lock files are gone too

    with pytest.raises(WeighbridgeError, match="needs a purpose"), v.materialize(row.id, " ", BOB):
        pass


def test_materialize_refuses_tampered_ciphertext_and_leaves_no_plaintext(
    store: Store, root: Path, tmp_path: Path, tmp_root: Path, vault: VaultFactory
) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(4 * CHUNK)})
    v = vault()
    v.deposit(row.id, files)
    blob = blob_of(store, root, row.id, "a.bin")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CustodyError, match="Chunk 3"), v.materialize(row.id, "evaluate", BOB):
        pytest.fail("the block must not run")
    assert not [p for p in tmp_root.rglob("*") if p.is_file()]


def test_plaintext_left_by_a_killed_process_is_swept_at_next_start(
    store: Store, tmp_path: Path, tmp_root: Path, vault: VaultFactory
) -> None:
    v = vault()
    stale = v.lease_root / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "weights.gguf").write_bytes(b"plaintext")
    (v.lease_root / "0123456789abcdef.lock").write_bytes(b"")  # unlocked: its owner is dead
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = v.lease_root / "fedcba9876543210"  # too young to judge: it may be starting up
    fresh.mkdir()
    vault()
    assert not stale.exists() and fresh.exists()
    assert [e.action for e in v.access_log()] == ["sweep"]
    assert sweep_stale_leases(v.lease_root, min_age_s=0) == 1


def test_every_access_is_logged_with_who_what_why(store: Store, tmp_path: Path, vault: VaultFactory) -> None:
    row, files = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(CHUNK)})
    other, _ = submit_dir(store, tmp_path / "n", {"b.bin": b"b"})
    v = vault()
    v.deposit(row.id, files, purpose="intake from lab")
    v.verify(row.id, purpose="weekly check")
    with v.materialize(row.id, "evaluate hazards suite", BOB):
        pass
    log = v.access_log(row.id)
    assert [(e.action, e.actor, e.purpose) for e in log] == [
        ("deposit", "alice", "intake from lab"),
        ("verify", "alice", "weekly check"),
        ("materialize", "bob", "evaluate hazards suite"),
        ("release", "bob", "evaluate hazards suite"),
    ]
    assert all(e.submission_id == row.id for e in log)
    assert log[0].detail == {"files": 1, "bytes": CHUNK}
    assert log[1].detail["ok"] is True
    assert v.access_log(other.id) == []


def test_key_source_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WEIGHBRIDGE_PASSPHRASE", raising=False)
    monkeypatch.delenv("WEIGHBRIDGE_KEY_FILE", raising=False)
    with pytest.raises(WeighbridgeError, match="Set WEIGHBRIDGE_PASSPHRASE or WEIGHBRIDGE_KEY_FILE"):
        key_source_from_env(interactive=False)
    assert isinstance(key_source_from_env(interactive=True), PromptedPassphrase)
    monkeypatch.setenv("WEIGHBRIDGE_KEY_FILE", str(tmp_path / "k"))
    assert key_source_from_env(interactive=False) == KeyFile(tmp_path / "k")
    monkeypatch.setenv("WEIGHBRIDGE_PASSPHRASE", "s3cret")
    source = key_source_from_env(interactive=False)
    assert source == Passphrase("s3cret") and "s3cret" not in repr(source)


def test_prompted_passphrase_asks_twice_for_a_new_store() -> None:
    answers = iter(["one", "two"])
    with pytest.raises(WeighbridgeError, match="differ"):
        PromptedPassphrase(lambda _prompt: next(answers)).secret(new=True)
    asked: list[str] = []
    source = PromptedPassphrase(lambda prompt: asked.append(prompt) or "same")
    assert source.secret(new=False) == source.secret(new=False) == b"same"
    assert len(asked) == 1  # asked once per process


def test_cli_deposit_verify_log(store: Store, root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from weighbridge.cli import app

    row, _ = submit_dir(store, tmp_path / "m", {"a.bin": os.urandom(3000)})
    db = f"sqlite:///{tmp_path / 'wb.db'}"
    monkeypatch.setenv("WEIGHBRIDGE_PASSPHRASE", "pw")
    monkeypatch.setenv("WEIGHBRIDGE_CUSTODY_DIR", str(root))
    runner = CliRunner()
    res = runner.invoke(app, ["custody", "deposit", row.id[:8], "--db", db])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db])
    assert res.exit_code == 0 and "ok" in res.output and "a.bin" in res.output, res.output
    blob = next(root.rglob("*.wbc"))
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    res = runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db])
    assert res.exit_code == 1 and "FAILED" in res.output and "a.bin" in res.output, res.output
    res = runner.invoke(app, ["custody", "log", row.id[:8], "--json", "--db", db])
    assert res.exit_code == 0
    assert [line.split('"action": "')[1].split('"')[0] for line in res.output.splitlines()] == [
        "deposit",
        "verify",
        "verify",
    ]
    monkeypatch.setenv("WEIGHBRIDGE_PASSPHRASE", "wrong")
    res = runner.invoke(app, ["custody", "verify", row.id[:8], "--db", db])
    assert res.exit_code == 1 and "The passphrase does not unlock this custody store" in res.output


def test_default_model_deposit_and_verify(store: Store, root: Path, tmp_root: Path, default_model_path: Path) -> None:
    """The real 98 MB GGUF, production chunk size and KDF."""
    manifest = build_manifest([default_model_path])
    model = ModelRef(default_model_path.stem, "gguf", manifest, path=str(default_model_path))
    row = store.add_submission(model, source=str(default_model_path))
    v = CustodyVault(store, root, PASS, tmp_root=tmp_root, actor="alice")
    (obj,) = v.deposit(row.id, submitted_files(row))
    assert obj.plaintext_sha256 == manifest.files[0].sha256
    assert (root / obj.blob).stat().st_size == obj.ciphertext_bytes > obj.plaintext_bytes
    result = v.verify(row.id)
    assert result.ok, result
