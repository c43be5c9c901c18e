"""Kept flow answers, and parts of them, stay within their room, dropping the least recently
used first."""

from __future__ import annotations

from uuid import UUID

from services.ledger.audit.flow_answers import AnswerKey, KeptAnswers, PartKey


def key(n: int) -> AnswerKey:
    return AnswerKey(UUID(int=n), "all", None, last_change=n, rebuilds=0)


def part(n: int) -> PartKey:
    return PartKey(UUID(int=n), None, last_change=n, rebuilds=0)


def test_the_least_recently_used_answer_goes_first_when_room_runs_out() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), (b"aa", b"aa"))
    kept.put(key(2), (b"bbbb",))
    assert kept.get(key(1)) == (b"aa", b"aa")  # now the most recently used
    kept.put(key(3), (b"cccc",))
    assert kept.get(key(2)) is None
    assert (kept.get(key(1)), kept.get(key(3))) == ((b"aa", b"aa"), (b"cccc",))
    assert kept.size == 8
    assert (kept.hits, kept.misses) == (3, 1)


def test_an_answer_larger_than_the_room_is_not_kept_and_drops_nothing() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), (b"aaaa",))
    kept.put(key(2), (b"x" * 6, b"y" * 5))
    assert kept.get(key(2)) is None
    assert kept.get(key(1)) == (b"aaaa",)


def test_an_answer_kept_again_replaces_the_first_and_counts_once() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), (b"aaaa",))
    kept.put(key(1), (b"bbb", b"bbb"))
    assert kept.get(key(1)) == (b"bbb", b"bbb")
    assert kept.size == 6


def test_parts_share_the_room_and_are_counted_apart_from_answers() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(part(1), b"pppp")
    kept.put(key(1), (b"aaaa",))
    assert kept.get(part(1)) == b"pppp"
    assert kept.get(part(2)) is None
    # A part and an answer of the same stream, change and rebuilds are different things.
    assert kept.get(key(2)) is None
    kept.put(part(3), b"qqqq")  # room for two of the three: the answer, least used, goes
    assert kept.get(key(1)) is None
    assert kept.size == 8
    assert (kept.lookups["part", "hit"], kept.lookups["part", "miss"]) == (1, 1)
    assert (kept.hits, kept.misses) == (0, 2)
