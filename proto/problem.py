"""RFC 9457 problem details: the body of every error response of every service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InvalidParam(BaseModel):
    """One rejected part of a request: where it is and what is wrong with it."""

    name: str = Field(description="Where in the request, e.g. body.sources[0].amount.amount")
    reason: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI identifying the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = Field(
        default=None, alias="invalid-params", serialization_alias="invalid-params"
    )
