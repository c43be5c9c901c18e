"""Kept flow answers stay within their room, dropping the least recently used first."""

from __future__ import annotations

from uuid import UUID

from services.ledger.audit.flow_answers import AnswerKey, KeptAnswers


def key(n: int) -> AnswerKey:
    return AnswerKey(UUID(int=n), "all", None, last_change=n, rebuilds=0)


def test_the_least_recently_used_answer_goes_first_when_room_runs_out() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), b"aaaa")
    kept.put(key(2), b"bbbb")
    assert kept.get(key(1)) == b"aaaa"  # now the most recently used
    kept.put(key(3), b"cccc")
    assert kept.get(key(2)) is None
    assert (kept.get(key(1)), kept.get(key(3))) == (b"aaaa", b"cccc")
    assert kept.size == 8
    assert (kept.hits, kept.misses) == (3, 1)


def test_an_answer_larger_than_the_room_is_not_kept_and_drops_nothing() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), b"aaaa")
    kept.put(key(2), b"x" * 11)
    assert kept.get(key(2)) is None
    assert kept.get(key(1)) == b"aaaa"


def test_an_answer_kept_again_replaces_the_first_and_counts_once() -> None:
    kept = KeptAnswers(max_bytes=10)
    kept.put(key(1), b"aaaa")
    kept.put(key(1), b"bbbbbb")
    assert kept.get(key(1)) == b"bbbbbb"
    assert kept.size == 6
