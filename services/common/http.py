"""Small conventions of every service's HTTP answers."""

from __future__ import annotations

from fastapi import Response


def created(response: Response, is_new: bool, location: str) -> None:
    """201 with a Location for a new record; 200 when a retry found the existing one."""
    response.status_code = 201 if is_new else 200
    response.headers["Location"] = location
