"""RFC 6962 / RFC 9162 Merkle tree hashing over the ledger's entry hashes.

Hand-written on purpose: the algorithms are thirty lines, and the Python packages that implement
them (`pymerkle`, `merkletools`, …) are either unmaintained, hash without the RFC's leaf/node domain
separation, or want the whole tree in memory — a verifier of a million-entry bundle needs the
streaming form below (`Frontier`: O(log n) memory). Tests check the results against the RFC's
recursive definition.

Leaves are the 32 raw bytes of each entry hash, in seq order. `leaf = SHA-256(0x00 || data)`,
`node = SHA-256(0x01 || left || right)`, and the empty tree's root is SHA-256 of nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class Frontier:
    """The roots of the perfect subtrees that make up a tree built left to right (a "compact range").

    Appending a leaf merges equal-sized subtrees, as adding 1 to a binary counter carries; the root
    of the whole tree folds those subtrees right to left, which is exactly RFC 6962's split at the
    largest power of two. Mutable by nature: it is an accumulator, not a record.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self._stack: list[tuple[int, bytes]] = []
        remaining = size
        for h in hashes:  # subtree sizes are the set bits of `size`, largest first
            width = 1 << (remaining.bit_length() - 1)
            self._stack.append((width, h))
            remaining -= width
        if remaining:
            raise ValueError("frontier hashes do not match the tree size")

    def append(self, data: bytes) -> None:
        self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> None:
        self.size += 1
        width = 1
        stack = self._stack
        while stack and stack[-1][0] == width:
            h = node_hash(stack.pop()[1], h)
            width *= 2
        stack.append((width, h))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h

    def hashes(self) -> list[bytes]:
        return [h for _, h in self._stack]


def root_of(leaves: Iterable[bytes]) -> bytes:
    """Merkle tree hash of the leaves' data (not of leaf hashes)."""
    frontier = Frontier()
    for data in leaves:
        frontier.append(data)
    return frontier.root()


def _subtree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append_leaf_hash(h)
    return frontier.root()


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(index, leaves): the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)}")
    hashes = [leaf_hash(d) for d in leaves]
    path: list[bytes] = []
    lo, hi, m = 0, len(hashes), index
    while hi - lo > 1:  # iterative form of the RFC's recursion; siblings are collected top-down
        k = 1 << ((hi - lo - 1).bit_length() - 1)  # largest power of two smaller than the range
        if m < k:
            path.append(_subtree_root(hashes[lo + k : hi]))
            hi = lo + k
        else:
            path.append(_subtree_root(hashes[lo : lo + k]))
            lo, m = lo + k, m - k
    return path[::-1]  # the RFC lists them bottom-up


def verify_inclusion(index: int, tree_size: int, data: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove leaf `index` with this data is in the tree with `root`?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash(data)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
