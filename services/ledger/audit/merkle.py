"""Merkle trees, audit paths and consistency proofs exactly as RFC 9162 section 2.1 defines them.

Pure functions over leaf hashes (32-byte SHA-256 digests, leaf `i` being the feed entry at
position `i + 1`); nothing here reads a database. Proof generation follows the recursive
definitions of sections 2.1.3.1 and 2.1.4.1 and verification the algorithms of 2.1.3.2 and
2.1.4.2, so the proofs verify with any RFC 9162 (or RFC 6962) verifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from hmac import compare_digest

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the hash of the empty tree, SHA-256 of the empty string."""
_LEAF, _NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of these leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    # Pairing neighbours level by level, a last odd node rising unchanged, builds the same tree
    # as the RFC's split at the largest power of two, without recursion.
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf `index` in the tree of these leaves, leaf first."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is not in a tree of size {len(leaves)}")
    siblings: list[bytes] = []
    low, high = 0, len(leaves)
    while high - low > 1:
        k = _split(high - low)
        if index < low + k:
            siblings.append(root(leaves[low + k : high]))
            high = low + k
        else:
            siblings.append(root(leaves[low : low + k]))
            low += k
    # Found from the root down; the RFC lists them from the leaf up.
    return siblings[::-1]


def consistency_proof(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): that the tree of the first `first` leaves is a prefix of these leaves."""
    if not 0 <= first <= len(leaves):
        raise ValueError(f"no tree of size {first} within a tree of size {len(leaves)}")
    if first in (0, len(leaves)):
        return []  # the empty tree, and a tree itself, need nothing to be shown consistent
    nodes: list[bytes] = []
    low, high, m, whole = 0, len(leaves), first, True
    while m != high - low:
        k = _split(high - low)
        if m <= k:
            nodes.append(root(leaves[low + k : high]))
            high = low + k
        else:
            nodes.append(root(leaves[low : low + k]))
            low, m, whole = low + k, m - k, False
    if not whole:
        # SUBPROOF(m, D[m], false): the subtree itself, which a verifier cannot know otherwise.
        nodes.append(root(leaves[low:high]))
    return nodes[::-1]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an audit path leads to (RFC 9162 section 2.1.3.2), None if it cannot be one."""
    if not 0 <= index < size or not _is_hash(leaf) or not all(_is_hash(p) for p in path):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether `path` proves leaf `index` is in the tree of `size` leaves with this root."""
    found = root_from_inclusion(index, size, leaf, path)
    return found is not None and compare_digest(found, root_hash)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `first` leaves is a prefix of that of `second` leaves."""
    if not 0 <= first <= second or not all(_is_hash(h) for h in (first_root, second_root)):
        return False
    if not all(_is_hash(h) for h in proof):
        return False
    if first == second:
        return not proof and compare_digest(first_root, second_root)
    if first == 0:
        return not proof and compare_digest(first_root, EMPTY_ROOT)
    # RFC 9162 section 2.1.4.2, steps 1 to 7.
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and compare_digest(fr, first_root) and compare_digest(sr, second_root)


class CompactRange:
    """The roots of the perfect subtrees covering the leaves appended so far: the root of every
    prefix of a long log in O(log n) memory, as the leaves stream past once."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        # (subtree root, number of leaves under it), the largest and leftmost first.
        self._peaks: list[tuple[bytes, int]] = []
        self.size = 0
        self.extend(leaves)

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        node, width = leaf, 1
        # Two neighbouring perfect subtrees of one width make the perfect subtree above them.
        while self._peaks and self._peaks[-1][1] == width:
            left, _ = self._peaks.pop()
            node, width = node_hash(left, node), width * 2
        self._peaks.append((node, width))
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order."""
        # Level by level rather than leaf by leaf: each level's nodes pair off in one pass, and
        # the peak of that width, if any, is the left neighbour of the level's first node.
        level, width, rising = list(leaves), 1, []
        self.size += len(level)
        while level:
            if self._peaks and self._peaks[-1][1] == width:
                level.insert(0, self._peaks.pop()[0])
            if len(level) % 2:
                rising.append((level.pop(), width))
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            width *= 2
        self._peaks += reversed(rising)

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        # The RFC's split puts the largest perfect subtree left of a tree made of the rest.
        node = self._peaks[-1][0]
        for peak, _ in reversed(self._peaks[:-1]):
            node = node_hash(peak, node)
        return node

    def copy(self) -> CompactRange:
        """An independent copy, to extend without changing this one."""
        twin = CompactRange()
        twin._peaks, twin.size = list(self._peaks), self.size
        return twin
