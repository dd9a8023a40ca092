"""Tampering with an exported ledger is detected and located (property tests over random edits).

The bundle comes from the real store through the real service: 14 entries by two actors, automatic
checkpoints every 4 entries and one on demand at 6, so checkpoints stand at 4, 6, 8 and 12 and the
last two entries are not yet covered by one.

Where damage "is" is defined without looking at the verifier: the first line at which the tampered
bundle differs from the original. A damaged entry line must be reported by its seq; a damaged
checkpoint line by its tree size; a missing, extra or moved entry line by the seq that belongs at
the first differing position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from weighbridge.ledger.bundle import line
from weighbridge.ledger.chain import make_checkpoint, make_entry
from weighbridge.ledger.merkle import root_of
from weighbridge.ledger.records import checkpoint_record, entry_from_record, entry_record
from weighbridge.ledger.signing import KeySigner
from weighbridge.ledger.verify import VerifyResult, verify_lines
from weighbridge.services import ledger
from weighbridge.store.db import Store

ORG = KeySigner.generate()
ALICE = KeySigner.generate()
BOB = KeySigner.generate()
HEADER_AND_KEYS = 4  # header + 3 keys (alice, bob, organisation)


def build_bundle(directory: Path) -> bytes:
    store = Store(f"sqlite:///{directory / 'ledger.db'}")
    try:
        for i in range(1, 15):
            signer, actor = (ALICE, "alice") if i % 3 else (BOB, "bob")
            evidence = {"i": i, "note": "évidence ✓", "nested": {"ok": True, "list": [1, 2]}}
            ledger.append(
                store, signer, actor, "record", f"sub-{i}", evidence, checkpoint_signer=ORG, checkpoint_every=4
            )
            if i == 6:
                ledger.checkpoint(store, ORG)
        path = directory / "bundle.jsonl"
        ledger.export_bundle(store, path)
        return path.read_bytes()
    finally:
        store.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_bundle(tmp_path_factory.mktemp("ledger"))


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def verify(data: bytes, **kwargs: object) -> VerifyResult:
    return verify_lines(lines_of(data), **kwargs)  # type: ignore[arg-type]


def kind(raw: bytes) -> str:
    return next(iter(json.loads(raw)))


def expected_location(original: list[bytes], tampered: list[bytes]) -> int:
    """The seq that belongs at the first line where the two bundles differ."""
    items = original[HEADER_AND_KEYS:]
    changed = tampered[HEADER_AND_KEYS:]
    i = next(i for i in range(len(items) + 1) if i >= len(items) or i >= len(changed) or items[i] != changed[i])
    return sum(kind(raw) == "entry" for raw in items[:i]) + 1


def assert_located(result: VerifyResult, where: tuple[str, int]) -> None:
    assert not result.ok
    what, n = where
    if what == "entry":
        assert (result.first_bad_seq, result.checkpoint) == (n, None), result.message
    else:
        assert (result.first_bad_seq, result.checkpoint) == (None, n), result.message


def test_the_untouched_bundle_verifies(bundle: bytes) -> None:
    result = verify(bundle)
    assert result.ok, result.message
    assert (result.entries, result.checkpoints, result.uncovered) == (14, 4, 2)
    assert [kind(raw) for raw in lines_of(bundle)].count("checkpoint") == 4
    assert result.checkpoint_signers == (ORG.key_id,)


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(data=st.data())
def test_any_single_byte_edit_is_detected_and_located(bundle: bytes, data: st.DataObject) -> None:
    original = lines_of(bundle)
    index = data.draw(st.integers(HEADER_AND_KEYS, len(original) - 1), label="line")
    target = original[index]
    offset = data.draw(st.integers(0, len(target) - 1), label="byte")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != target[offset]), label="new byte")
    tampered = bytearray(target)
    tampered[offset] = value
    edited = b"".join([*original[:index], bytes(tampered), *original[index + 1 :]])
    result = verify(edited)
    if kind(target) == "entry":
        seq = json.loads(target)["entry"]["seq"]
        assert_located(result, ("entry", seq))
    else:
        size = json.loads(target)["checkpoint"]["tree_size"]
        assert_located(result, ("checkpoint", size))


def entry_indices(original: list[bytes]) -> list[int]:
    return [i for i in range(HEADER_AND_KEYS, len(original)) if kind(original[i]) == "entry"]


@PROPERTY
@given(data=st.data())
def test_deleting_an_entry_is_detected_and_located(bundle: bytes, data: st.DataObject) -> None:
    original = lines_of(bundle)
    index = data.draw(st.sampled_from(entry_indices(original)))
    tampered = original[:index] + original[index + 1 :]
    assert_located(verify(b"".join(tampered)), ("entry", expected_location(original, tampered)))


@PROPERTY
@given(data=st.data())
def test_inserting_an_entry_is_detected_and_located(bundle: bytes, data: st.DataObject) -> None:
    original = lines_of(bundle)
    copied = original[data.draw(st.sampled_from(entry_indices(original)))]
    at = data.draw(st.integers(HEADER_AND_KEYS, len(original)))
    tampered = [*original[:at], copied, *original[at:]]
    assert_located(verify(b"".join(tampered)), ("entry", expected_location(original, tampered)))


@PROPERTY
@given(data=st.data())
def test_reordering_entries_is_detected_and_located(bundle: bytes, data: st.DataObject) -> None:
    original = lines_of(bundle)
    indices = entry_indices(original)
    a, b = data.draw(st.lists(st.sampled_from(indices), min_size=2, max_size=2, unique=True))
    tampered = list(original)
    if data.draw(st.booleans(), label="swap (else move)"):
        tampered[a], tampered[b] = tampered[b], tampered[a]
    else:
        moved = tampered.pop(a)
        tampered.insert(b, moved)
    assume(tampered != original)
    assert_located(verify(b"".join(tampered)), ("entry", expected_location(original, tampered)))


@pytest.mark.parametrize("size", [4, 6, 8, 12])
def test_a_deleted_checkpoint_is_named(bundle: bytes, size: int) -> None:
    original = lines_of(bundle)
    tampered = [raw for raw in original if json.loads(raw).get("checkpoint", {}).get("tree_size") != size]
    assert len(tampered) == len(original) - 1
    assert_located(verify(b"".join(tampered)), ("checkpoint", size))


def test_a_truncated_bundle_names_the_first_missing_entry(bundle: bytes) -> None:
    original = lines_of(bundle)
    assert_located(verify(b"".join(original[:-1])), ("entry", 14))
    assert_located(verify(b"".join(original[:-2])), ("entry", 13))  # ends after checkpoint 12
    assert_located(verify(b"".join(original[:-3])), ("checkpoint", 12))


@pytest.mark.parametrize("index", range(HEADER_AND_KEYS))
def test_edits_to_the_header_or_keys_are_detected(bundle: bytes, index: int) -> None:
    original = lines_of(bundle)
    for offset in range(0, len(original[index]), 7):
        target = bytearray(original[index])
        target[offset] ^= 0x01
        result = verify(b"".join([*original[:index], bytes(target), *original[index + 1 :]]))
        assert not result.ok, (offset, result.message)


def rewrite(bundle: bytes, start: int, signer_for: dict[str, KeySigner]) -> list[bytes]:
    """An insider's rewrite: entries from `start` on get new content, are re-hashed, re-chained and
    re-signed with the actors' real keys — everything but the organisation's checkpoints."""
    out: list[bytes] = []
    prev = None
    for raw in lines_of(bundle):
        record = json.loads(raw)
        if "entry" in record:
            entry = entry_from_record(record["entry"])
            if entry.seq >= start:
                evidence = {"i": entry.seq, "note": "rewritten"}
                entry = make_entry(
                    seq=entry.seq,
                    prev_hash=prev or entry.prev_hash,
                    signer=signer_for[entry.actor],
                    actor=entry.actor,
                    action=entry.action,
                    subject=entry.subject,
                    evidence=evidence,
                    time=entry.time,
                )
                raw = line("entry", entry_record(entry))
            prev = entry.entry_hash
        out.append(raw)
    return out


def test_a_consistent_rewrite_with_actor_keys_fails_at_the_next_checkpoint(bundle: bytes) -> None:
    tampered = rewrite(bundle, 7, {"alice": ALICE, "bob": BOB})
    result = verify(b"".join(tampered))
    assert_located(result, ("checkpoint", 8))
    assert "root mismatch" in result.message
    # Past the last checkpoint only the organisation's next checkpoint can tell: chain and signatures hold.
    assert verify(b"".join(rewrite(bundle, 13, {"alice": ALICE, "bob": BOB}))).ok


def test_a_checkpoint_signed_by_a_wrong_key_fails(bundle: bytes) -> None:
    original = lines_of(bundle)
    index = next(i for i, raw in enumerate(original) if kind(raw) == "checkpoint")
    cp = json.loads(original[index])["checkpoint"]
    entries = [json.loads(raw)["entry"] for raw in original if kind(raw) == "entry"][: cp["tree_size"]]
    root = root_of(bytes.fromhex(e["entry_hash"]) for e in entries)
    assert root.hex() == cp["root"]
    # Re-signed by alice, whose key the bundle lists, but for alice, not for the organisation.
    forged = make_checkpoint(tree_size=cp["tree_size"], root=root, signer=ALICE, time=cp["time"])
    tampered = b"".join([*original[:index], line("checkpoint", checkpoint_record(forged)), *original[index + 1 :]])
    result = verify(tampered)
    assert_located(result, ("checkpoint", 4))
    assert "signed by alice's key, not an organisation key" in result.message
    # Signed by another organisation key (listed as such in the bundle): only trusting names the culprit.
    other = KeySigner.generate()
    forged = make_checkpoint(tree_size=cp["tree_size"], root=root, signer=other, time=cp["time"])
    key_line = line("key", {"actor": "organisation", "key_id": other.key_id, "public_key": other.public_key.hex()})
    header = json.loads(original[0])
    header["header"]["keys"] += 1
    tampered_lines = [
        line("header", header["header"]),
        *original[1:HEADER_AND_KEYS],
        key_line,
        *original[HEADER_AND_KEYS:index],
        line("checkpoint", checkpoint_record(forged)),
        *original[index + 1 :],
    ]
    tampered = b"".join(tampered_lines)
    assert verify(tampered).ok
    assert verify(tampered).checkpoint_signers == tuple(sorted({ORG.key_id, other.key_id}))
    result = verify(tampered, trusted_keys=[ORG.key_id])
    assert_located(result, ("checkpoint", 4))
    assert "not a trusted key" in result.message
    # The org's key id on a signature made by another key.
    stolen = dict(checkpoint_record(forged), signer_key_id=ORG.key_id)
    tampered = b"".join([*original[:index], line("checkpoint", stolen), *original[index + 1 :]])
    result = verify(tampered, trusted_keys=[ORG.key_id])
    assert_located(result, ("checkpoint", 4))
    assert "bad signature" in result.message
    assert verify(bundle, trusted_keys=[ORG.key_id]).ok


def test_chain_only_skips_signatures_but_not_hashes(bundle: bytes) -> None:
    original = lines_of(bundle)
    index = next(i for i, raw in enumerate(original) if kind(raw) == "entry")
    record = json.loads(original[index])["entry"]
    record["signature"] = ("0" if record["signature"][0] != "0" else "1") + record["signature"][1:]
    tampered = b"".join([*original[:index], line("entry", record), *original[index + 1 :]])
    assert verify(tampered, check_signatures=False).ok
    result = verify(tampered)
    assert_located(result, ("entry", 1))
    assert "bad signature" in result.message


def test_edits_at_line_boundaries_are_located(bundle: bytes) -> None:
    """The places random edits rarely hit: a newline lost (two lines glued) or added (one split)."""
    original = lines_of(bundle)
    for index in range(HEADER_AND_KEYS, len(original)):
        target = original[index]
        record = json.loads(target)
        where = (
            ("entry", record["entry"]["seq"])
            if "entry" in record
            else ("checkpoint", record["checkpoint"]["tree_size"])
        )
        for offset in (0, 1, 2, len(target) - 2, len(target) - 1):
            for value in (ord("\n"), ord(" "), target[offset] ^ 0x01):
                if value == target[offset]:
                    continue
                tampered = bytearray(target)
                tampered[offset] = value
                result = verify(b"".join([*original[:index], bytes(tampered), *original[index + 1 :]]))
                assert_located(result, where)


def with_bad_signature(lines: list[bytes], seq: int) -> list[bytes]:
    out = list(lines)
    i = next(i for i, raw in enumerate(out) if f'"seq":{seq},'.encode() in raw)
    record = json.loads(out[i])["entry"]
    record["signature"] = ("0" if record["signature"][0] != "0" else "1") + record["signature"][1:]
    out[i] = line("entry", record)
    return out


def with_bad_hash(lines: list[bytes], seq: int) -> list[bytes]:
    out = list(lines)
    i = next(i for i, raw in enumerate(out) if f'"seq":{seq},'.encode() in raw)
    out[i] = out[i].replace(b'"subject":"sub-', b'"subject":"SUB-')
    return out


@pytest.mark.parametrize(
    ("damage", "first_bad"),
    [
        (lambda ls: ls, None),
        (lambda ls: with_bad_signature(ls, 5), 5),
        (lambda ls: with_bad_hash(with_bad_signature(ls, 3), 9), 3),  # a signature before a hash
        (lambda ls: with_bad_signature(with_bad_hash(ls, 2), 9), 2),  # a hash before a signature
    ],
)
def test_signatures_checked_by_worker_processes_give_the_same_verdict(
    bundle: bytes, damage: Callable[[list[bytes]], list[bytes]], first_bad: int | None
) -> None:
    lines = damage(lines_of(bundle))
    inline = verify_lines(lines)
    parallel = verify_lines(lines, jobs=2)
    assert inline.first_bad_seq == parallel.first_bad_seq == first_bad
    assert (inline.ok, inline.message, inline.entries, inline.checkpoints, inline.uncovered) == (
        parallel.ok,
        parallel.message,
        parallel.entries,
        parallel.checkpoints,
        parallel.uncovered,
    )
    assert inline.signature_seconds > 0 and parallel.signature_seconds > 0


def test_hostile_lines_are_verdicts_not_crashes(bundle: bytes) -> None:
    original = lines_of(bundle)
    deep = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    result = verify(b"".join([*original[:5], deep, *original[6:]]))
    assert_located(result, ("entry", 2))
    assert not verify(b"").ok and "empty" in verify(b"").message


def resign_checkpoints(lines: list[bytes], signer: KeySigner) -> list[bytes]:
    """Recompute and re-sign every checkpoint over the (rewritten) entries: what a holder of the
    organisation key could do."""
    out: list[bytes] = []
    hashes: list[bytes] = []
    for raw in lines:
        record = json.loads(raw)
        if "entry" in record:
            hashes.append(bytes.fromhex(record["entry"]["entry_hash"]))
        elif "checkpoint" in record:
            cp = make_checkpoint(
                tree_size=len(hashes), root=root_of(hashes), signer=signer, time=record["checkpoint"]["time"]
            )
            raw = line("checkpoint", checkpoint_record(cp))
        out.append(raw)
    return out


def test_pinned_roots_catch_a_history_rewritten_with_the_organisation_key(bundle: bytes) -> None:
    original = lines_of(bundle)
    records = [json.loads(raw) for raw in original[HEADER_AND_KEYS:]]
    roots = {r["checkpoint"]["tree_size"]: r["checkpoint"]["root"] for r in records if "checkpoint" in r}
    hashes = [bytes.fromhex(r["entry"]["entry_hash"]) for r in records if "entry" in r]
    assert verify(bundle, pinned_roots=roots).ok
    assert verify(bundle, pinned_roots={5: root_of(hashes[:5]).hex()}).ok  # any size, not only checkpoints

    forged = resign_checkpoints(rewrite(bundle, 7, {"alice": ALICE, "bob": BOB}), ORG)
    assert verify(b"".join(forged), trusted_keys=[ORG.key_id]).ok  # signatures cannot tell
    result = verify(b"".join(forged), trusted_keys=[ORG.key_id], pinned_roots={8: roots[8]})
    assert_located(result, ("checkpoint", 8))
    assert "not the pinned root" in result.message
    assert verify(b"".join(forged), pinned_roots={6: roots[6]}).ok  # entries 1..6 were not touched
    result = verify(bundle, pinned_roots={99: roots[8]})
    assert_located(result, ("entry", 15))
