"""Checking the ledger's Merkle proofs with code that is not the ledger's.

An inclusion proof is handed to pymerkle, an independent RFC 9162 implementation; consistency
proofs are checked by RFC 9162 section 2.1.4.2 transcribed step by step, since pymerkle's own
consistency proofs follow a layout of their own, not the RFC's.
"""

from __future__ import annotations

import hashlib

from pymerkle import (  # type: ignore[import-untyped]
    InclusionProof,
    InmemoryTree,
    InvalidProof,
)
from pymerkle import verify_inclusion as pymerkle_verify_inclusion


def sha256(data: bytes) -> bytes:
    """SHA-256, as RFC 9162 names it."""
    return hashlib.sha256(data).digest()


def pymerkle_inclusion(tree: InmemoryTree, index: int, size: int, path: list[bytes]) -> bool:
    """Whether pymerkle accepts our audit path (its proofs carry the leaf first)."""
    leaf, layout = tree.get_leaf(index + 1), tree.prove_inclusion(index + 1, size)
    proof = InclusionProof("sha256", True, size, index + 1, layout.rule, [leaf, *path])
    try:
        pymerkle_verify_inclusion(leaf, tree.get_root(size), proof)
    except InvalidProof:
        return False
    return True


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2, step by step, for 0 < first < second.

    Written here rather than taken from a library: pymerkle's consistency proofs follow a layout
    of its own (it splits at `first < k` where the RFC splits at `m <= k`), not the RFC's.
    """
    if not path:  # 1
        return False
    if first & (first - 1) == 0:  # 2
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1  # 3
    while fn & 1:  # 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # 5
    for c in path[1:]:  # 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr)
            sr = sha256(b"\x01" + c + sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # 7
