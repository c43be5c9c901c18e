"""The auditor's verification of the log's lines: every root, every position, the earlier run."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_audit.verification import (
    RootMismatch,
    VerificationFailed,
    Verified,
    first_difference,
    stated_position,
    verify_log,
)
from proto.canonical import canonical_json, checkpoint_note, checkpoint_time
from services.ledger.audit import merkle

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes_raw().hex()
TAKEN = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def line(position: int, note: str = "") -> bytes:
    """An entry's canonical bytes, its payload naming other positions to mislead a reader."""
    payload = {"position": position + 100, "note": f'{note},"position":{position + 200},'}
    return canonical_json({"payload": payload, "position": position, "stream_version": 1})


def signed(lines: list[bytes], size: int) -> dict[str, Any]:
    """The ledger's checkpoint of the first `size` lines."""
    root = merkle.root([merkle.leaf_hash(x) for x in lines[:size]])
    note = checkpoint_note(size, root, TAKEN)
    return {
        "tree_size": size,
        "root_hash": root.hex(),
        "timestamp": checkpoint_time(TAKEN),
        "note": note.decode(),
        "signature": KEY.sign(note).hex(),
    }


def paged(lines: list[bytes], seed: int) -> list[list[bytes]]:
    """The lines in pages of uneven sizes, as a ledger may serve them."""
    rng = random.Random(seed)  # noqa: S311 -- test data; seeded so runs repeat
    pages, at = [], 0
    while at < len(lines):
        size = rng.randint(1, 7)
        pages.append(lines[at : at + size])
        at += size
    return pages


LINES = [line(p) for p in range(1, 41)]
SIZES = (1, 5, 16, 17, 40)


@pytest.mark.parametrize("seed", range(5))
def test_a_sound_log_verifies_at_every_checkpoint_however_it_is_paged(seed: int) -> None:
    checkpoints = [signed(LINES, size) for size in SIZES]
    counted: list[int] = []
    size, latest = verify_log(paged(LINES, seed), checkpoints, PUBLIC, None, counted.append)
    assert (size, latest) == (40, checkpoints[-1])
    assert sum(counted) == 40


@pytest.mark.parametrize("seed", range(3))
def test_an_altered_entry_fails_the_first_checkpoint_after_it_and_is_named(seed: int) -> None:
    checkpoints = [signed(LINES, size) for size in SIZES]
    altered = [*LINES[:8], line(9, "changed"), *LINES[9:]]
    with pytest.raises(RootMismatch, match="checkpoint 16's signed root") as failed:
        verify_log(paged(altered, seed), checkpoints, PUBLIC, None)
    recorded = [(p, merkle.leaf_hash(x).hex()) for p, x in enumerate(LINES, start=1)]
    assert first_difference(failed.value.computed, recorded) == 9


def test_a_missing_entry_is_named_by_its_position() -> None:
    gapped = [*LINES[:11], *LINES[12:]]
    with pytest.raises(VerificationFailed, match="position 12: the feed serves position 13"):
        verify_log(paged(gapped, 0), [signed(LINES, 40)], PUBLIC, None)


def test_history_rewritten_and_re_signed_fails_the_earlier_runs_root() -> None:
    earlier = Verified(PUBLIC, 16, signed(LINES, 16)["root_hash"], "2026-11-22T00:00:00Z")
    rewritten = [*LINES[:2], line(3, "rewritten"), *LINES[3:]]
    # The operator signs new checkpoints over the rewritten entries, same sizes.
    checkpoints = [signed(rewritten, size) for size in SIZES]
    with pytest.raises(RootMismatch, match="this tool verified on 2026-11-22"):
        verify_log(paged(rewritten, 1), checkpoints, PUBLIC, earlier)
    assert verify_log(paged(LINES, 1), [signed(LINES, 40)], PUBLIC, earlier)[0] == 40


def test_fewer_entries_than_verified_before_or_than_signed_fail() -> None:
    earlier = Verified(PUBLIC, 40, signed(LINES, 40)["root_hash"], "2026-11-22T00:00:00Z")
    with pytest.raises(VerificationFailed, match="fewer than the 40 verified"):
        verify_log(paged(LINES[:30], 0), [], PUBLIC, earlier)
    with pytest.raises(VerificationFailed, match="checkpoint 40 covers more entries"):
        verify_log(paged(LINES[:30], 0), [signed(LINES, 40)], PUBLIC, None)


def test_a_forged_signature_fails_before_any_entry_is_read() -> None:
    forged = signed(LINES, 40) | {"signature": "00" * 64}
    with pytest.raises(VerificationFailed, match="signature does not verify"):
        verify_log(iter(()), [forged], PUBLIC, None)


def test_the_stated_position_is_the_entrys_own_not_one_its_payload_names() -> None:
    assert stated_position(line(7)) == 7
    assert stated_position(b'{"a":1,"position":"7"}') is None


@pytest.mark.parametrize("written", [b'"position":007,', b'"position":7}'])
def test_a_position_not_written_as_the_ledger_writes_it_states_no_position(written: bytes) -> None:
    odd = line(7).replace(b'"position":7,', written)
    assert stated_position(odd) is None
    with pytest.raises(VerificationFailed, match="position 7: the feed serves position None"):
        verify_log([[*LINES[:6], odd]], [], PUBLIC, None)
