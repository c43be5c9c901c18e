"""Small conventions of every service's HTTP answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Response

from services.common.wire import MAX_POSITION

After = Annotated[
    int, Query(ge=0, le=MAX_POSITION, description="Return entries after this position")
]
"""Where a page of a feed starts: the position of the entry before it (0 for the first)."""

FOUND_AGAIN = "A retry with a reference or code already used: the record made the first time"


def found_again(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for the 200 a create answers when a retry finds the record it made before."""
    return {200: {"model": model, "description": FOUND_AGAIN}}


def created(response: Response, is_new: bool, location: str) -> None:
    """201 with a Location for a new record; 200 when a retry found the existing one."""
    response.status_code = 201 if is_new else 200
    response.headers["Location"] = location
