"""Reading a service's feed as a follower would: page after page until an empty one."""

from __future__ import annotations

import httpx

from proto.feed import FeedEntry, FeedPage
from tests.support.actors import AUDITOR


async def read_whole_feed(client: httpx.AsyncClient, limit: int = 3) -> list[FeedEntry]:
    """Every entry of the feed at `client`, read by an auditor, in small pages so paging itself
    is exercised."""
    entries: list[FeedEntry] = []
    after = 0
    while True:
        params = {"after": after, "limit": limit}
        response = await client.get("/events", params=params, headers=AUDITOR)
        assert response.status_code == 200, response.text
        page = FeedPage.model_validate(response.json())
        if not page.entries:
            return entries
        assert page.next_after > after, page
        entries += page.entries
        after = page.next_after
