"""The ledger's parts: canonical encoding, RFC 6962 Merkle trees, entries, checkpoints, proofs and
the service API over a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weighbridge.errors import WeighbridgeError
from weighbridge.ledger.canonical import canonical_json, evidence_digest
from weighbridge.ledger.merkle import EMPTY_ROOT, Frontier, inclusion_path, leaf_hash, node_hash, verify_inclusion
from weighbridge.ledger.proof import proof_to_json, verify_proof
from weighbridge.ledger.records import GENESIS_HASH, entry_hash_of, entry_signing_message
from weighbridge.ledger.signing import KeySigner, verify_signature
from weighbridge.services import ledger
from weighbridge.store.db import Store

ORG = KeySigner.generate()
ALICE = KeySigner.generate()


# -- reference implementation of RFC 6962 §2.1, written from the text, recursive -----------------
def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path_ref(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path_ref(m, leaves[:k]), mth(leaves[k:])]
    return [*path_ref(m - k, leaves[k:]), mth(leaves[:k])]


LEAVES = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]


@pytest.mark.parametrize("n", range(71))
def test_frontier_root_is_the_rfc_6962_tree_hash(n: int) -> None:
    frontier = Frontier()
    for data in LEAVES[:n]:
        frontier.append(data)
    assert frontier.root() == mth(LEAVES[:n])
    # Resuming from the stored frontier gives the same later roots (what checkpoints rely on).
    resumed = Frontier(frontier.size, frontier.hashes())
    for data in LEAVES[n:]:
        resumed.append(data)
        frontier.append(data)
        assert resumed.root() == frontier.root()
    assert frontier.root() == mth(LEAVES)


def test_empty_tree_and_domain_separation() -> None:
    assert Frontier().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    a, b = LEAVES[0], LEAVES[1]
    # A node can never pass for a leaf: the 0x00 / 0x01 prefixes differ.
    assert leaf_hash(leaf_hash(a) + leaf_hash(b)) != node_hash(leaf_hash(a), leaf_hash(b))
    with pytest.raises(ValueError):
        Frontier(3, [LEAVES[0]])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 33])
def test_inclusion_paths_match_the_rfc_and_verify(n: int) -> None:
    leaves = LEAVES[:n]
    root = mth(leaves)
    for m in range(n):
        path = inclusion_path(m, leaves)
        assert path == path_ref(m, leaves)
        assert verify_inclusion(m, n, leaves[m], path, root)
        assert not verify_inclusion(m, n, LEAVES[69], path, root)  # other data
        if n > 1:
            assert not verify_inclusion((m + 1) % n, n, leaves[m], path, root)  # other index
            assert not verify_inclusion(m, n, leaves[m], path[:-1], root)  # shortened path
            bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert not verify_inclusion(m, n, leaves[m], bent, root)
        assert not verify_inclusion(m, n, leaves[m], path, mth(LEAVES[: n + 1]))  # another tree's root
    with pytest.raises(IndexError):
        inclusion_path(n, leaves)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_canonical_json_is_stable_and_single_line(value: object) -> None:
    encoded = canonical_json(value)
    assert b"\n" not in encoded and b"\r" not in encoded
    assert canonical_json(json.loads(encoded)) == encoded


def test_evidence_digest_of_mappings_ignores_key_order_and_hashes_bytes_as_given() -> None:
    assert evidence_digest({"b": 1, "a": "é"}) == evidence_digest({"a": "é", "b": 1})
    assert evidence_digest({"a": "é", "b": 1}) == "sha256:" + hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert evidence_digest(b"raw") == "sha256:" + hashlib.sha256(b"raw").hexdigest()


# -- the service over a real store --------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield s
    s.close()


def test_append_chains_hashes_and_signs_each_entry(store: Store) -> None:
    first = ledger.append(store, ALICE, "alice", "submit", "sub-1", {"model": "m", "digest": "ab" * 32})
    second = ledger.append(store, ALICE, "alice", "custody.deposit", "sub-1", b"\x00binary evidence")
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.entry_hash)
    assert first.entry_hash == entry_hash_of(first.body())
    assert verify_signature(ALICE.public_key, bytes.fromhex(first.signature), entry_signing_message(first.entry_hash))
    assert first.evidence_json == '{"digest":"' + "ab" * 32 + '","model":"m"}'
    assert second.evidence_json is None
    assert second.evidence_digest == "sha256:" + hashlib.sha256(b"\x00binary evidence").hexdigest()
    assert first.time.endswith("Z") and first.time <= second.time
    assert ledger.read_entries(store) == [first, second]
    assert ledger.read_entries(store, last=1) == [second]
    assert ledger.verify_store(store).ok


def test_automatic_checkpoints_fall_on_multiples_of_n(store: Store) -> None:
    for i in range(7):
        ledger.append(store, ALICE, "alice", "act", f"s{i}", {"i": i}, checkpoint_signer=ORG, checkpoint_every=3)
    cps = ledger.read_checkpoints(store)
    assert [cp.tree_size for cp in cps] == [3, 6]
    assert all(cp.signer_key_id == ORG.key_id for cp in cps)
    hashes = [bytes.fromhex(e.entry_hash) for e in ledger.read_entries(store)]
    assert [cp.root for cp in cps] == [mth(hashes[:3]).hex(), mth(hashes[:6]).hex()]
    on_demand = ledger.checkpoint(store, ORG)
    assert (on_demand.tree_size, on_demand.root) == (7, mth(hashes).hex())
    assert ledger.checkpoint(store, ORG) == on_demand  # nothing new: the same checkpoint
    result = ledger.verify_store(store, trusted_keys=[ORG.key_id])
    assert (result.ok, result.checkpoints, result.uncovered) == (True, 3, 0)


def test_append_many_is_one_transaction_with_the_same_chain(store: Store) -> None:
    written = ledger.append_many(
        store,
        ALICE,
        "alice",
        [("act", f"s{i}", {"i": i}) for i in range(10)],
        checkpoint_signer=ORG,
        checkpoint_every=4,
    )
    assert [e.seq for e in written] == list(range(1, 11))
    assert [cp.tree_size for cp in ledger.read_checkpoints(store)] == [4, 8]
    assert ledger.verify_store(store).ok
    for bad in ({"x": object()}, {"x": float("nan")}, {1: "a", "b": 2}):
        with pytest.raises(WeighbridgeError, match="not plain JSON"):
            ledger.append(store, ALICE, "alice", "act", "s", bad)
    assert len(ledger.read_entries(store)) == 10


def test_a_key_belongs_to_one_actor(store: Store, tmp_path: Path) -> None:
    ledger.append(store, ALICE, "alice", "act", "s", {})
    with pytest.raises(WeighbridgeError, match="registered in the ledger for 'alice'"):
        ledger.append(store, ALICE, "mallory", "act", "s", {})
    with pytest.raises(WeighbridgeError, match="registered in the ledger for 'alice'"):
        ledger.checkpoint(store, ALICE)  # a user's key cannot sign checkpoints
    empty = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(WeighbridgeError, match="empty"):
            ledger.checkpoint(empty, ORG)
    finally:
        empty.close()


def test_concurrent_appends_keep_one_gapless_chain(store: Store) -> None:
    signers = [(KeySigner.generate(), f"user{i}") for i in range(4)]
    errors: list[BaseException] = []

    def work(signer: KeySigner, actor: str) -> None:
        try:
            for j in range(8):
                ledger.append(
                    store, signer, actor, "act", f"{actor}-{j}", {"j": j}, checkpoint_signer=ORG, checkpoint_every=5
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    entries = ledger.read_entries(store)
    assert [e.seq for e in entries] == list(range(1, 33))
    assert [cp.tree_size for cp in ledger.read_checkpoints(store)] == [5, 10, 15, 20, 25, 30]
    assert ledger.verify_store(store).ok


def test_export_and_verify_bundle_round_trip(store: Store, tmp_path: Path) -> None:
    for i in range(5):
        ledger.append(store, ALICE, "alice", "act", f"s{i}", {"i": i}, checkpoint_signer=ORG, checkpoint_every=2)
    path = tmp_path / "audit.jsonl"
    ledger.export_bundle(store, path)
    result = ledger.verify_bundle(path, trusted_keys=[ORG.key_id])
    assert (result.ok, result.entries, result.checkpoints, result.uncovered) == (True, 5, 2, 1)
    assert ledger.verify_bundle(path, check_signatures=False).ok
    with pytest.raises(WeighbridgeError, match="Cannot read"):
        ledger.verify_bundle(tmp_path / "missing.jsonl")


def test_inclusion_proofs_verify_and_fail_when_altered(store: Store) -> None:
    for i in range(11):
        ledger.append(store, ALICE, "alice", "act", f"s{i}", {"i": i}, checkpoint_signer=ORG, checkpoint_every=4)
    with pytest.raises(WeighbridgeError, match="no checkpoint"):
        ledger.prove(store, 10)
    with pytest.raises(WeighbridgeError, match="no entry 99"):
        ledger.prove(store, 99)
    ledger.checkpoint(store, ORG)
    for seq in range(1, 12):
        proof = proof_to_json(ledger.prove(store, seq))
        assert verify_proof(proof, trusted_keys=[ORG.key_id]).ok
    proof = proof_to_json(ledger.prove(store, 3, checkpoint_size=11))
    assert proof["tree_size"] == 11 and verify_proof(proof).ok
    assert not verify_proof(proof, trusted_keys=[ALICE.key_id]).ok

    def altered(change: str) -> dict[str, object]:
        p = json.loads(json.dumps(proof))
        if change == "entry":
            p["entry"]["subject"] = "s-forged"
        elif change == "path":
            p["path"][0] = ("0" if p["path"][0][0] != "0" else "1") + p["path"][0][1:]
        elif change == "root":
            p["checkpoint"]["root"] = "00" * 32
        elif change == "index":
            p["entry"]["seq"] = 4
            p["leaf_index"] = 3
        elif change == "signature":
            p["checkpoint"]["signature"] = "00" * 64
        elif change == "key":
            p["keys"][1]["public_key"] = ALICE.public_key.hex()
            p["keys"][1]["key_id"] = ALICE.key_id
        return p  # type: ignore[no-any-return]

    for change in ("entry", "path", "root", "index", "signature", "key"):
        result = verify_proof(altered(change))
        assert not result.ok, change
    assert "hash mismatch" in verify_proof(altered("entry")).message
    assert "not in the tree" in verify_proof(altered("path")).message
    assert not verify_proof({"format": "nope"}).ok
