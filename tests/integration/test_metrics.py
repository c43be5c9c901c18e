"""What a Prometheus scrape of each service shows ops: requests by route, followers, the queue."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.notifier.main import create_app as create_notifier
from services.notifier.settings import NotifierSettings
from tests.integration.test_reconcile import tell_the_story
from tests.support.actors import AUDITOR
from tests.support.catalog import Parties
from tests.support.inprocess import client_for
from tests.support.ledger_api import ok
from tests.support.metrics import sample

pytestmark = pytest.mark.asyncio


async def test_the_ledger_shows_its_appends_its_followers_and_its_checkpoints_age(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    head = ok(await ledger.get("/events", params={"limit": 1}, headers=AUDITOR), 200)["head"]
    before = (await ledger.get("/metrics")).text
    # No checkpoint yet in this test's time: no age to show, and every entry waits for one.
    assert sample(before, "ledger_checkpoint_age_seconds") is None
    assert sample(before, "ledger_follower_lag_entries", follower="checkpoints") == head

    ok(await ledger.post("/audit/checkpoints", headers=AUDITOR), 200, 201)
    scraped = await ledger.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert sample(text, "ledger_events_appended_total") == head
    assert sample(text, "ledger_feed_head_position") == head
    assert sample(text, "ledger_follower_lag_entries", follower="checkpoints") == 0
    # Every write went through the group committer, some perhaps sharing a transaction.
    writes = sample(text, "ledger_group_commit_writes_total")
    transactions = sample(text, "ledger_group_commit_transactions_total")
    assert writes is not None
    assert transactions is not None
    assert 0 < transactions <= writes
    # No flow read yet: nothing looked for, nothing kept.
    assert sample(text, "ledger_flow_answer_lookups_total", outcome="hit") == 0
    assert sample(text, "ledger_flow_answers_kept_bytes") == 0
    age = sample(text, "ledger_checkpoint_age_seconds")
    assert age is not None
    assert 0 <= age < 60
    # Requests are counted by route template, never by the ids in their paths.
    routes = [line for line in text.splitlines() if line.startswith("http_requests_total{")]
    assert any('route="/contracts/{contract_id}/payments"' in line for line in routes)
    assert not any(parties.street_office_id in line for line in routes)


async def test_the_ledger_shows_how_often_a_kept_flow_answer_was_found(
    ledger: httpx.AsyncClient, parties: Parties
) -> None:
    await tell_the_story(ledger, parties)
    budget = ok(await ledger.get("/budgets", headers=AUDITOR), 200)["items"][0]["id"]
    for _ in range(3):
        answer = await ledger.get(f"/audit/budgets/{budget}/flow", headers=AUDITOR)
    text = (await ledger.get("/metrics")).text
    assert sample(text, "ledger_flow_answer_lookups_total", outcome="miss") == 1
    assert sample(text, "ledger_flow_answer_lookups_total", outcome="hit") == 2
    # The first read built the part below each contract and grant, and kept each.
    holders = [
        held
        for allocation in answer.json()["budget"]["children"]
        for held in allocation["children"]
    ]
    assert holders
    assert sample(text, "ledger_flow_part_lookups_total", outcome="miss") == len(holders)
    assert sample(text, "ledger_flow_part_lookups_total", outcome="hit") == 0
    # What is kept is the budget's part of the answer (all of it but the terms around it), and
    # the parts below its contracts and grants.
    budget_part = len(answer.content) - len(answer.content.split(b'"budget":', 1)[0]) - 10
    kept = sample(text, "ledger_flow_answers_kept_bytes")
    assert kept is not None
    assert budget_part < kept < 2 * len(answer.content)


async def test_the_notifier_shows_its_feeds_and_its_queue(
    ledger_app: FastAPI, database_url: str, catalog_url: str
) -> None:
    settings = NotifierSettings(
        database_url=database_url, catalog_url=catalog_url, worker=False, migrate_on_start=True
    )
    async with client_for(create_notifier(settings)) as notifier:
        text = (await notifier.get("/metrics")).text
    assert sample(text, "notifier_webhook_queue_depth") == 0
    assert sample(text, "notifier_feed_position", feed="ledger") == 0
    assert sample(text, "notifier_feed_position", feed="catalog") == 0
    # Without a worker here, attempts are counted nowhere: the series are absent, not zero.
    assert sample(text, "notifier_webhook_attempts_total", outcome="delivered") is None
