"""Communities: the tasks they refuse, and their service guide."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from proto.catalog import CommunityGuide, Organization, Refusal
from services.catalog.api.deps import AsOf, CatalogDep
from services.catalog.api.schemas import RefusalCreate
from services.common.auth import Authenticated, CurrentActor
from services.common.problems import PROBLEM_RESPONSES

# Not every endpoint here needs a caller: the community service guide is public.
router = APIRouter(prefix="/communities", tags=["communities"], responses=PROBLEM_RESPONSES)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _quality(accept: str, media_type: str) -> float:
    """The q-value an Accept header gives a media type (exact, type/*, or */*), 0 if none."""
    best, specificity = 0.0, -1
    main = media_type.split("/")[0]
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        rank = {media_type: 2, f"{main}/*": 1, "*/*": 0}.get(kind.lower(), -1)
        if rank <= specificity:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best, specificity = q, rank
    return best


def _prefers_html(accept: str) -> bool:
    """A browser asks for HTML first; systems ask for JSON or anything (then JSON)."""
    html = _quality(accept, "text/html")
    return html > 0 and html > _quality(accept, "application/json") and "text/html" in accept


@router.post("/{community_id}/refusals", operation_id="refuseTask", status_code=201)
async def refuse_task(
    community_id: UUID, body: RefusalCreate, catalog: CatalogDep, caller: CurrentActor
) -> Refusal:
    """Record a community's refusal of a task for an item on none of its three lists."""
    return await catalog.refuse_task(
        community_id,
        item_id=body.item_id,
        reason=body.reason,
        occurred_at=body.occurred_at,
        by=caller,
    )


@router.get("/{community_id}/refusals", operation_id="listRefusals", dependencies=[Authenticated])
async def list_refusals(
    community_id: UUID, catalog: CatalogDep, as_of: AsOf = None
) -> list[Refusal]:
    """The tasks a community refused, with their reasons."""
    await catalog.get(Organization, community_id, as_of)
    found, _ = await catalog.find(Refusal, parent_id=community_id, as_of=as_of)
    return found


@router.get(
    "/{community_id}/guide",
    operation_id="communityGuide",
    response_model=CommunityGuide,
    responses={200: {"content": {"text/html": {}}}},
)
async def community_guide(
    community_id: UUID,
    catalog: CatalogDep,
    as_of: AsOf = None,
    format: Annotated[
        Literal["json", "html"] | None,
        Query(description="Overrides the Accept header"),
    ] = None,
    accept: Annotated[str, Header()] = "application/json",
) -> Response | CommunityGuide:
    """The community service guide (社区服务指南), as JSON or as a readable HTML page."""
    guide = await catalog.guide(community_id, as_of)
    wants_html = format == "html" or (format is None and _prefers_html(accept))
    if not wants_html:
        return guide
    page = _templates.get_template("guide.html").render(guide=guide)
    return HTMLResponse(page)
