"""The ledger's Merkle tree is RFC 9162's: the published test vectors, trees worked by hand, and
every proof of small trees checked against the RFC's own definitions, an independent library
(pymerkle: roots and inclusion proofs) and the RFC's verification algorithms transcribed here,
so that any auditor's verifier agrees with ours."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymerkle import InmemoryTree  # type: ignore[import-untyped]

from proto.actor import Actor, Role
from proto.canonical import canonical_bytes, checkpoint_note
from proto.feed import FeedEntry
from services.ledger.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from services.ledger.audit.signing import load_signing_key
from tests.support.merkle_reference import pymerkle_inclusion, rfc_verify_consistency


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- RFC 9162 section 2.1, transcribed as the RFC writes it (recursion and slices) ----------


def rfc_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over the entries themselves."""
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return sha256(b"\x00" + d[0])
    k = rfc_k(len(d))
    return sha256(b"\x01" + rfc_mth(d[:k]) + rfc_mth(d[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = rfc_k(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [rfc_mth(d)]
    k = rfc_k(len(d))
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


# --- the published vectors (RFC 6962's reference tree, as Certificate Transparency tests it) ---

VECTOR_DATA = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_LEAVES = [leaf_hash(d) for d in VECTOR_DATA]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root([]) == EMPTY_ROOT == CompactRange().root()


def test_roots_match_the_published_vectors_for_every_size() -> None:
    for size in range(1, len(VECTOR_DATA) + 1):
        assert root(VECTOR_LEAVES[:size]).hex() == VECTOR_ROOTS[size - 1], size
        assert CompactRange(VECTOR_LEAVES[:size]).root().hex() == VECTOR_ROOTS[size - 1], size


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, [H_96A2, H_5F08, H_6B47]), (5, [H_BC1A, H_CA85, VECTOR_ROOTS[3]])],
)
def test_audit_paths_match_the_published_vectors(index: int, path: list[str]) -> None:
    assert [h.hex() for h in inclusion_path(index, VECTOR_LEAVES)] == path
    root8 = bytes.fromhex(VECTOR_ROOTS[7])
    assert verify_inclusion(index, 8, VECTOR_LEAVES[index], [*map(bytes.fromhex, path)], root8)


@pytest.mark.parametrize(
    ("first", "proof"),
    [(2, [H_5F08, H_6B47]), (6, [H_0EBC, H_CA85, VECTOR_ROOTS[3]])],
)
def test_consistency_proofs_match_the_published_vectors(first: int, proof: list[str]) -> None:
    assert [h.hex() for h in consistency_proof(first, VECTOR_LEAVES)] == proof
    first_root, second_root = (bytes.fromhex(VECTOR_ROOTS[i]) for i in (first - 1, 7))
    nodes = [bytes.fromhex(h) for h in proof]
    assert verify_consistency(first, 8, first_root, second_root, nodes)


def test_small_trees_worked_by_hand() -> None:
    a, b, c, d, e = (sha256(b"\x00" + bytes([i])) for i in range(5))
    assert leaf_hash(bytes([0])) == a
    assert node_hash(a, b) == sha256(b"\x01" + a + b)
    leaves = [a, b, c, d, e]
    ab, cd = sha256(b"\x01" + a + b), sha256(b"\x01" + c + d)
    abcd = sha256(b"\x01" + ab + cd)
    # Three leaves split 2 + 1, five split 4 + 1: the split is at the largest power of two
    # below n, not at the middle.
    assert root(leaves[:1]) == a
    assert root(leaves[:3]) == sha256(b"\x01" + ab + c)
    assert root(leaves) == sha256(b"\x01" + abcd + e)
    assert inclusion_path(2, leaves[:3]) == [ab]
    assert inclusion_path(4, leaves) == [abcd]
    assert inclusion_path(1, leaves) == [a, cd, e]
    # From the tree of 3 to the tree of 5: c (its right edge), d, ab, then e.
    assert consistency_proof(3, leaves) == [c, d, ab, e]
    # A first tree of a power-of-two size is not repeated: the verifier has its root.
    assert consistency_proof(4, leaves) == [e]


# --- every proof of every tree of 1..17 leaves -----------------------------------------------

SIZES = range(1, 18)
DATA = [f"entry {i}".encode() for i in range(max(SIZES))]


def pymerkle_tree(size: int) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for data in DATA[:size]:
        tree.append_entry(data)
    return tree


@pytest.mark.parametrize("size", SIZES)
def test_roots_are_the_rfc_roots_and_pymerkles(size: int) -> None:
    leaves = [leaf_hash(d) for d in DATA[:size]]
    assert root(leaves) == rfc_mth(DATA[:size]) == pymerkle_tree(size).get_root(size)
    assert CompactRange(leaves).root() == root(leaves)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8, 64])
def test_a_compact_range_extended_in_chunks_has_every_prefixs_root(chunk: int) -> None:
    leaves = [leaf_hash(str(n).encode()) for n in range(100)]
    grown, one_by_one = CompactRange(), CompactRange()
    for start in range(0, len(leaves), chunk):
        grown.extend(leaves[start : start + chunk])
        for leaf in leaves[start : start + chunk]:
            one_by_one.append(leaf)
        assert grown.size == one_by_one.size == min(start + chunk, len(leaves))
        assert grown.root() == one_by_one.root() == root(leaves[: grown.size])


@pytest.mark.parametrize("size", SIZES)
def test_every_inclusion_proof_round_trips_and_others_verify_it(size: int) -> None:
    leaves = [leaf_hash(d) for d in DATA[:size]]
    tree_root, tree = root(leaves), pymerkle_tree(size)
    for index in range(size):
        path = inclusion_path(index, leaves)
        assert path == rfc_path(index, DATA[:size]), index
        assert verify_inclusion(index, size, leaves[index], path, tree_root), index
        assert pymerkle_inclusion(tree, index, size, path), index
        # The proof is for this leaf at this place in this tree, and nothing else.
        assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, tree_root)
        grown = root([*leaves, leaf_hash(b"next")])
        assert not verify_inclusion(index, size + 1, leaves[index], path, grown)
        if size > 1:
            other = (index + 1) % size
            assert not verify_inclusion(other, size, leaves[index], path, tree_root)
            bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert not verify_inclusion(index, size, leaves[index], bent, tree_root)
            assert not pymerkle_inclusion(tree, index, size, bent)
            assert not verify_inclusion(index, size, leaves[index], path[:-1], tree_root)
        assert not verify_inclusion(index, size, leaves[index], [*path, EMPTY_ROOT], tree_root)


@pytest.mark.parametrize("second", SIZES)
def test_every_consistency_proof_round_trips_and_others_verify_it(second: int) -> None:
    leaves = [leaf_hash(d) for d in DATA[:second]]
    second_root = root(leaves)
    for first in range(1, second + 1):
        first_root = root(leaves[:first])
        proof = consistency_proof(first, leaves)
        assert proof == rfc_subproof(first, DATA[:second], True), first
        assert verify_consistency(first, second, first_root, second_root, proof), first
        if first == second:
            assert proof == []
            continue
        assert rfc_verify_consistency(first, second, first_root, second_root, proof), first
        # Another first tree, or a tampered proof, is not consistent.
        forged = root([leaf_hash(b"forged"), *leaves[1:first]])
        for verify in (verify_consistency, rfc_verify_consistency):
            assert not verify(first, second, forged, second_root, proof)
            assert not verify(first, second, first_root, second_root, [EMPTY_ROOT, *proof[1:]])
            assert not verify(first, second, first_root, second_root, proof[:-1])
            assert not verify(first, second, first_root, second_root, [])


def test_proofs_for_leaves_or_trees_that_are_not_there_are_refused() -> None:
    leaves = VECTOR_LEAVES
    with pytest.raises(ValueError, match="not in a tree of size 8"):
        inclusion_path(8, leaves)
    with pytest.raises(ValueError, match="no tree of size 9"):
        consistency_proof(9, leaves)
    assert not verify_consistency(8, 6, root(leaves), root(leaves[:6]), [EMPTY_ROOT])
    assert verify_consistency(0, 8, EMPTY_ROOT, root(leaves), [])


# --- what is hashed and what is signed -------------------------------------------------------


def test_the_canonical_bytes_are_sorted_compact_utf8_json() -> None:
    entry = FeedEntry(
        position=7,
        stream_id=UUID("00000000-0000-4000-8000-000000000001"),
        stream_type="budget",
        stream_version=1,
        event_type="budget.opened",
        occurred_at=datetime(2014, 1, 1, 9, tzinfo=timezone(timedelta(hours=8))),
        recorded_at=datetime(2014, 1, 1, 1, 0, 0, 120000, tzinfo=UTC),
        caused_by=Actor(
            role=Role.FINANCE,
            organization_id=UUID("00000000-0000-4000-8000-000000000002"),
            subject="clerk",
        ),
        payload={"title": "武侯区\n2014", "amount": {"currency": "CNY", "amount": "1.50"}},
    )
    expected = (
        '{"caused_by":{"organization_id":"00000000-0000-4000-8000-000000000002",'
        '"role":"finance","subject":"clerk"},"event_type":"budget.opened",'
        '"occurred_at":"2014-01-01T09:00:00+08:00",'
        '"payload":{"amount":{"amount":"1.50","currency":"CNY"},"title":"武侯区\\n2014"},'
        '"position":7,"recorded_at":"2014-01-01T01:00:00.120000Z",'
        '"stream_id":"00000000-0000-4000-8000-000000000001","stream_type":"budget",'
        '"stream_version":1}'
    )
    assert canonical_bytes(entry) == expected.encode("utf-8")
    # What a client gets from the wire, re-serialized the documented way, is the same bytes.
    served = json.loads(entry.model_dump_json())
    again = json.dumps(served, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert again.encode() == canonical_bytes(entry)


def test_the_checkpoint_note_is_four_lines() -> None:
    taken = datetime(2014, 6, 2, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    note = checkpoint_note(8, bytes.fromhex(VECTOR_ROOTS[7]), taken)
    assert (
        note
        == (
            f"community-ledger checkpoint\n8\n{VECTOR_ROOTS[7]}\n2014-06-02T02:00:00.000000Z\n"
        ).encode()
    )
    with pytest.raises(ValueError, match="32-byte"):
        checkpoint_note(8, b"short", taken)


def test_the_checkpoint_key_is_read_from_pem_or_a_base64_seed_and_never_echoed() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw = key.public_key().public_bytes_raw()
    for text in (pem, pem.replace("\n", "\\n"), base64.b64encode(seed).decode()):
        assert load_signing_key(text).public_key().public_bytes_raw() == raw
    secret = base64.b64encode(seed[:31]).decode()
    with pytest.raises(ValueError, match="32-byte seed") as refused:
        load_signing_key(secret)
    assert secret not in str(refused.value)
    with pytest.raises(ValueError, match="neither a PEM key nor base64"):
        load_signing_key("not a key!")
