"""The event feed every service publishes at `GET /events?after=N`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from proto.actor import Actor


class FeedEntry(BaseModel):
    """One event in commit order; `payload` follows the schema named by `event_type`."""

    model_config = ConfigDict(extra="forbid")

    position: int = Field(ge=1, description="Dense: 1, 2, 3, … in commit order, never a hole")
    stream_id: UUID = Field(description="The aggregate the event belongs to")
    stream_type: str = Field(description="Kind of aggregate, e.g. budget, contract")
    stream_version: int = Field(ge=1, description="The event's number within its stream")
    event_type: str = Field(description="e.g. payment.recorded; see proto/schema/events/")
    occurred_at: AwareDatetime = Field(description="Business time, as given by the caller")
    recorded_at: AwareDatetime = Field(description="When the ledger stored it; never decreases")
    caused_by: Actor | None = Field(
        description="Who caused it: the role, organization and subject of the caller's verified "
        "token. Null only for catalog changes recorded before callers were authenticated."
    )
    payload: dict[str, Any]


class FeedPage(BaseModel):
    """A page of the feed; ask again with `after=next_after` until `entries` is empty."""

    model_config = ConfigDict(extra="forbid")

    entries: list[FeedEntry]
    next_after: int = Field(ge=0, description="The position to pass as `after` for the next page")
    head: int = Field(ge=0, description="The last position stored when the page was read")

    @classmethod
    def of(cls, entries: list[FeedEntry], *, after: int, head: int) -> FeedPage:
        """The page of `entries` read after `after`, the head having been read just before."""
        next_after, head = cls.cursor([e.position for e in entries[-1:]], after=after, head=head)
        return cls(entries=entries, next_after=next_after, head=head)

    @staticmethod
    def cursor(positions: list[int], *, after: int, head: int) -> tuple[int, int]:
        """`next_after` and `head` of a page holding entries at `positions`, in order."""
        last = positions[-1] if positions else after
        # Entries committed between reading the head and the page still count as read.
        return last, max(head, last)
