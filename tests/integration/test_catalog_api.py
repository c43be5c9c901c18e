"""The catalog over HTTP: organizations, admission, codes, history, lists, guides and its feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import pytest_asyncio

from proto.actor import Actor, Role
from proto.catalog import CATALOG_EVENT_PAYLOADS, CommunityGuide, ItemKind
from proto.feed import FeedPage
from services.catalog.main import create_app
from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings, mint_token
from tests.support.actors import (
    AUDIT_OFFICE_ID,
    AUDITOR,
    CIVIL_AFFAIRS,
    CIVIL_AFFAIRS_ID,
    WUHOU_FINANCE_ID,
    acting,
)
from tests.support.feeds import read_whole_feed
from tests.support.inprocess import client_for
from tests.support.ledger_api import cny, ok

pytestmark = pytest.mark.asyncio

REGISTERED_AT = "2014-03-01T09:00:00+08:00"
PROPOSED_AT = "2014-03-20T09:00:00+08:00"
REVIEWED_AT = "2014-03-25T09:00:00+08:00"
ADMITTED_AT = "2014-03-31T09:00:00+08:00"
OPENED_AT = "2014-04-01T09:00:00+08:00"
FUNDING_2014 = [{"source": "Wuhou district finance", "year": 2014, "amount": cny("360000.00")}]
JSON = dict[str, Any]


@pytest_asyncio.fixture
async def catalog(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A catalog on a fresh database, its schema migrated at startup, driven in-process, acting
    as the district civil-affairs bureau unless a request names another caller."""
    app = create_app(CatalogSettings(database_url=database_url))
    async with client_for(app) as client:
        client.headers.update(CIVIL_AFFAIRS)
        yield client


async def post(
    client: httpx.AsyncClient,
    path: str,
    body: JSON,
    *statuses: int,
    at: str = REGISTERED_AT,
    headers: dict[str, str] | None = None,
) -> JSON:
    """POST with a business time (REGISTERED_AT unless told), as the client's caller unless
    `headers` name another; the JSON after checking the status."""
    response = await client.post(path, json={"occurred_at": at, **body}, headers=headers)
    result: JSON = ok(response, *statuses)
    return result


def as_community(community: JSON) -> dict[str, str]:
    """Headers for a request made by this community, acting for itself."""
    return acting(Role.COMMUNITY, community["id"])


async def anonymously(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """A request without the client's bearer token, as anyone on the internet would make it."""
    request = client.build_request(method, url, **kwargs)
    del request.headers["Authorization"]
    return await client.send(request)


def problem(response: httpx.Response, status: int) -> str:
    """The `detail` of a problem+json answer, after checking its status and media type."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    detail = body["detail"]
    assert isinstance(detail, str)
    return detail


async def head(client: httpx.AsyncClient) -> int:
    """The feed's last position."""
    return int(ok(await client.get("/events"), 200)["head"])


def instant(value: str) -> datetime:
    """A wire timestamp as an aware datetime, to compare instants whatever their offset."""
    return datetime.fromisoformat(value)


async def organization(client: httpx.AsyncClient, kind: str, name: str, **extra: Any) -> JSON:
    """Register an organization of a kind."""
    return await post(client, "/organizations", {"kind": kind, "name": name, **extra})


async def street_and_community(
    client: httpx.AsyncClient, community_name: str = "Longjin community"
) -> tuple[JSON, JSON]:
    """Cuqiao street office and one community under it."""
    street = await organization(client, "street_office", "Cuqiao street office")
    community = await organization(
        client, "community", community_name, street_office_id=street["id"]
    )
    return street, community


def registration(track: str, capital: str, members: int) -> JSON:
    """A community public-interest organization's registration (登记) or filing (备案)."""
    return {
        "track": track,
        "category": "community_public_interest",
        "registered_capital": cny(capital),
        "members": members,
    }


async def provider(client: httpx.AsyncClient, name: str) -> JSON:
    """A registered community public-interest organization exactly at the thresholds."""
    return await organization(
        client, "social_organization", name, registration=registration("registered", "3000.00", 5)
    )


async def propose(
    client: httpx.AsyncClient,
    bureau_id: str,
    name: str = "Home visits for elderly people living alone",
    *,
    at: str = PROPOSED_AT,
    **extra: Any,
) -> JSON:
    """An item proposed by the bureau; public, on the list of assisting duties unless told."""
    body = {
        "name": name,
        "description": "Weekly visits and a call when needed",
        "kind": "public",
        "domain": "elderly",
        "target_groups": ["elderly over 60 living alone"],
        "delivery_modes": ["on_site", "follow_up"],
        "duty_list": "committee_assisting",
        "proposed_by": bureau_id,
        **extra,
    }
    return await post(client, "/items", body, at=at)


async def admitted(client: httpx.AsyncClient, bureau_id: str, name: str, **extra: Any) -> JSON:
    """An item proposed on 2014-03-20, reviewed on 03-25 and admitted with funding on 03-31."""
    item = await propose(client, bureau_id, name, **extra)
    await post(client, f"/items/{item['id']}/review", {}, at=REVIEWED_AT)
    return await post(
        client, f"/items/{item['id']}/admission", {"funding": FUNDING_2014}, at=ADMITTED_AT
    )


# --- organizations ----------------------------------------------------------------------------


async def test_registers_every_kind_of_organization(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, community = await street_and_community(catalog)
    society = await provider(catalog, "Longjin residents' service center")
    agency = await organization(
        catalog,
        "social_work_agency",
        "Aixin social work agency",
        registration={"track": "filed", "category": "social_work_agency"},
        contact="028-8555 0000",
    )

    assert community["street_office_id"] == street["id"]
    assert bureau["street_office_id"] is None
    assert society["registration"]["registered_capital"] == cny("3000.00")
    for record in (bureau, street, community, society, agency):
        assert record["version"] == 1
        assert ok(await catalog.get(f"/organizations/{record['id']}"), 200) == record
    kinds = [o["kind"] for o in ok(await catalog.get("/organizations"), 200)["items"]]
    assert kinds == [
        "district_bureau",
        "street_office",
        "community",
        "social_organization",
        "social_work_agency",
    ]


async def test_a_community_belongs_to_a_street_office(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    before = await head(catalog)

    orphan = await catalog.post(
        "/organizations", json={"kind": "community", "name": "Longjin community"}
    )
    assert "street office" in problem(orphan, 422)
    under_bureau = await catalog.post(
        "/organizations",
        json={"kind": "community", "name": "Longjin community", "street_office_id": bureau["id"]},
    )
    assert "not a street office" in problem(under_bureau, 422)
    assert await head(catalog) == before


@pytest.mark.parametrize(
    ("capital", "members", "expected"),
    [
        ("2999.99", 5, ["3000.00 CNY of capital", "got 2999.99"]),
        ("3000.00", 4, ["at least 5 members", "got 4"]),
    ],
)
async def test_a_registered_community_organization_below_the_thresholds_is_refused(
    catalog: httpx.AsyncClient, capital: str, members: int, expected: list[str]
) -> None:
    before = await head(catalog)
    response = await catalog.post(
        "/organizations",
        json={
            "kind": "social_organization",
            "name": "Small residents' club",
            "registration": registration("registered", capital, members),
        },
    )
    detail = problem(response, 422)
    assert "registered community public-interest organization" in detail
    for words in expected:
        assert words in detail
    assert await head(catalog) == before
    listed = ok(await catalog.get("/organizations", params={"kind": "social_organization"}), 200)
    assert listed["items"] == []


async def test_a_filed_community_organization_needs_no_capital_or_members(
    catalog: httpx.AsyncClient,
) -> None:
    filed = await organization(
        catalog,
        "social_organization",
        "Small residents' club",
        registration=registration("filed", "2999.99", 4),
    )
    assert filed["registration"]["track"] == "filed"
    assert filed["registration"]["members"] == 4
    assert await head(catalog) == 1


# --- codes ------------------------------------------------------------------------------------


async def test_a_known_organization_code_returns_the_first_record(
    catalog: httpx.AsyncClient,
) -> None:
    body = {"kind": "street_office", "name": "Cuqiao street office", "code": "11510107MB0000001X"}
    first = await post(catalog, "/organizations", body, 201)
    again = await catalog.post("/organizations", json=body)

    assert again.status_code == 200, again.text
    assert again.json() == first
    assert again.headers["location"] == f"/organizations/{first['id']}"
    assert await head(catalog) == 1
    other = await catalog.post("/organizations", json={**body, "name": "Jiangxi street office"})
    detail = problem(other, 409)
    assert "11510107MB0000001X" in detail
    assert first["id"] in detail
    assert await head(catalog) == 1
    assert len(ok(await catalog.get("/organizations"), 200)["items"]) == 1


async def test_a_known_item_code_returns_the_first_item(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    first = await propose(catalog, bureau["id"], code="WH-2014-001")
    before = await head(catalog)

    again = await catalog.post(
        "/items",
        json={
            "name": first["name"],
            "code": "WH-2014-001",
            "kind": "public",
            "domain": "elderly",
            "delivery_modes": ["on_site"],
            "duty_list": "committee_assisting",
            "proposed_by": bureau["id"],
        },
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    assert again.headers["location"] == f"/items/{first['id']}"
    renamed = await catalog.post(
        "/items",
        json={
            "name": "Meals for elderly people",
            "code": "WH-2014-001",
            "kind": "public",
            "domain": "elderly",
            "delivery_modes": ["on_site"],
            "duty_list": "committee_assisting",
            "proposed_by": bureau["id"],
        },
    )
    assert "WH-2014-001" in problem(renamed, 409)
    assert await head(catalog) == before
    assert [i["id"] for i in ok(await catalog.get("/items"), 200)["items"]] == [first["id"]]


# --- admission --------------------------------------------------------------------------------


async def test_admission_from_proposal_to_retirement(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, _ = await street_and_community(catalog)
    before = await head(catalog)
    by_street = await catalog.post(
        "/items",
        json={
            "name": "Home visits",
            "kind": "public",
            "domain": "elderly",
            "delivery_modes": ["on_site"],
            "duty_list": "none",
            "proposed_by": street["id"],
        },
    )
    detail = problem(by_street, 422)
    assert "street_office" in detail
    assert "district_bureau" in detail
    assert await head(catalog) == before

    item = await propose(catalog, bureau["id"])
    assert (item["status"], item["version"], item["proposed_by"]) == ("proposed", 1, bureau["id"])
    early = await catalog.post(f"/items/{item['id']}/admission", json={"funding": FUNDING_2014})
    assert "it is proposed" in problem(early, 409)

    reviewed = await post(catalog, f"/items/{item['id']}/review", {}, at=REVIEWED_AT)
    assert (reviewed["status"], reviewed["version"]) == ("under_review", 2)
    twice = await catalog.post(f"/items/{item['id']}/review", json={"occurred_at": REVIEWED_AT})
    assert "it is under_review" in problem(twice, 409)
    unfunded = await catalog.post(
        f"/items/{item['id']}/admission", json={"occurred_at": ADMITTED_AT, "funding": []}
    )
    assert "funding" in problem(unfunded, 422)

    admitted_item = await post(
        catalog, f"/items/{item['id']}/admission", {"funding": FUNDING_2014}, at=ADMITTED_AT
    )
    assert (admitted_item["status"], admitted_item["version"]) == ("admitted", 3)
    assert admitted_item["funding"] == FUNDING_2014
    too_late = await catalog.post(
        f"/items/{item['id']}/rejection", json={"occurred_at": ADMITTED_AT, "reason": "no"}
    )
    assert "it is admitted" in problem(too_late, 409)

    retired = await post(
        catalog,
        f"/items/{item['id']}/retirement",
        {"reason": "Merged into home care"},
        at=OPENED_AT,
    )
    assert (retired["status"], retired["decision_reason"]) == ("retired", "Merged into home care")
    assert retired["funding"] == FUNDING_2014
    again = await catalog.post(
        f"/items/{item['id']}/retirement", json={"occurred_at": OPENED_AT, "reason": "again"}
    )
    assert "it is retired" in problem(again, 409)
    assert ok(await catalog.get(f"/items/{item['id']}"), 200) == retired


async def test_rejection_needs_a_reason(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await propose(catalog, bureau["id"], "Door-to-door leaflet delivery")
    before = await head(catalog)

    blank = await catalog.post(f"/items/{item['id']}/rejection", json={"reason": "   "})
    assert "reason" in problem(blank, 422)
    assert await head(catalog) == before
    rejected = await post(
        catalog,
        f"/items/{item['id']}/rejection",
        {"reason": "Administrative work, not a service"},
        at=REVIEWED_AT,
    )
    assert rejected["status"] == "rejected"
    assert rejected["decision_reason"] == "Administrative work, not a service"
    review = await catalog.post(f"/items/{item['id']}/review", json={"occurred_at": ADMITTED_AT})
    assert "it is rejected" in problem(review, 409)


async def test_a_market_item_is_admitted_without_funding(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await propose(catalog, bureau["id"], "Paid housekeeping", kind="market")
    await post(catalog, f"/items/{item['id']}/review", {}, at=REVIEWED_AT)

    market = await post(catalog, f"/items/{item['id']}/admission", {}, at=ADMITTED_AT)
    assert (market["status"], market["funding"]) == ("admitted", [])


# --- history and business time -----------------------------------------------------------------


async def test_history_lists_every_version_as_it_was(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await admitted(catalog, bureau["id"], "Home visits for elderly people living alone")

    history = ok(await catalog.get(f"/items/{item['id']}/history"), 200)
    assert [(c["version"], c["event_type"]) for c in history] == [
        (1, "item.proposed"),
        (2, "item.review_started"),
        (3, "item.admitted"),
    ]
    assert [c["record"]["status"] for c in history] == ["proposed", "under_review", "admitted"]
    assert [c["record"]["version"] for c in history] == [1, 2, 3]
    assert [c["record"]["funding"] for c in history] == [[], [], FUNDING_2014]
    assert [instant(c["occurred_at"]) for c in history] == [
        instant(PROPOSED_AT),
        instant(REVIEWED_AT),
        instant(ADMITTED_AT),
    ]
    positions = [c["position"] for c in history]
    assert positions == sorted(positions)
    assert history[-1]["record"] == item
    assert ok(await catalog.get(f"/organizations/{bureau['id']}/history"), 200)[0]["record"] == (
        bureau
    )
    not_an_item = await catalog.get(f"/items/{bureau['id']}/history")
    assert problem(not_an_item, 404)


async def test_as_of_shows_an_item_as_it_stood(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await admitted(catalog, bureau["id"], "Home visits for elderly people living alone")
    url = f"/items/{item['id']}"

    during_review = ok(await catalog.get(url, params={"as_of": "2014-03-26T00:00:00+08:00"}), 200)
    assert (during_review["status"], during_review["version"]) == ("under_review", 2)
    proposed = ok(await catalog.get(url, params={"as_of": "2014-03-20T09:00:00+08:00"}), 200)
    assert proposed["status"] == "proposed"
    # The same instant written in UTC: the offset must not matter.
    on_admission = ok(await catalog.get(url, params={"as_of": "2014-03-31T01:00:00+00:00"}), 200)
    assert on_admission["status"] == "admitted"
    before = await catalog.get(url, params={"as_of": "2014-03-19T00:00:00+08:00"})
    assert "as of 2014-03-19" in problem(before, 404)
    naive = await catalog.get(url, params={"as_of": "2014-03-26T00:00:00"})
    assert "as_of" in problem(naive, 422)
    listed = ok(
        await catalog.get(
            "/items", params={"as_of": "2014-03-26T00:00:00+08:00", "status": "under_review"}
        ),
        200,
    )
    assert [i["id"] for i in listed["items"]] == [item["id"]]


async def test_a_change_back_dated_before_the_last_one_is_refused(
    catalog: httpx.AsyncClient,
) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await admitted(catalog, bureau["id"], "Home visits for elderly people living alone")
    before = await head(catalog)

    back_dated = await catalog.post(
        f"/items/{item['id']}/retirement",
        json={"occurred_at": "2014-03-30T09:00:00+08:00", "reason": "Merged"},
    )
    detail = problem(back_dated, 422)
    assert "before this item's last change" in detail
    assert await head(catalog) == before
    assert ok(await catalog.get(f"/items/{item['id']}"), 200)["status"] == "admitted"


# --- lists --------------------------------------------------------------------------------------


async def test_lists_filter_and_page_through_every_record_once(
    catalog: httpx.AsyncClient,
) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    cuqiao = await organization(catalog, "street_office", "Cuqiao street office")
    jiangxi = await organization(catalog, "street_office", "Jiangxi street office")
    communities = [
        await organization(catalog, "community", name, street_office_id=street["id"])
        for name, street in [
            ("Longjin community", cuqiao),
            ("Jiangxi community", jiangxi),
            ("Qiaoxi community", cuqiao),
            ("Gaosheng community", cuqiao),
        ]
    ]
    public = await admitted(catalog, bureau["id"], "Home visits")
    social = await propose(catalog, bureau["id"], "Youth reading club", kind="social")
    market = await propose(catalog, bureau["id"], "Paid housekeeping", kind="market")
    every = [bureau, cuqiao, jiangxi, *communities]

    def ids(page: JSON) -> list[str]:
        return [r["id"] for r in page["items"]]

    in_cuqiao = ok(
        await catalog.get("/organizations", params={"street_office_id": cuqiao["id"]}), 200
    )
    assert ids(in_cuqiao) == [communities[0]["id"], communities[2]["id"], communities[3]["id"]]
    streets = ok(await catalog.get("/organizations", params={"kind": "street_office"}), 200)
    assert ids(streets) == [cuqiao["id"], jiangxi["id"]]
    chosen = ok(
        await catalog.get("/organizations", params={"ids": [jiangxi["id"], bureau["id"]]}), 200
    )
    assert ids(chosen) == [bureau["id"], jiangxi["id"]]
    assert ids(ok(await catalog.get("/items", params={"status": "admitted"}), 200)) == [
        public["id"]
    ]
    assert ids(ok(await catalog.get("/items", params={"kind": "market"}), 200)) == [market["id"]]
    proposed = ok(await catalog.get("/items", params={"status": "proposed"}), 200)
    assert ids(proposed) == [social["id"], market["id"]]

    cases: list[tuple[dict[str, str | int], list[JSON]]] = [
        ({"limit": 2}, every),
        ({"limit": 3}, every),
        ({"limit": 1, "kind": "community"}, communities),
        ({"limit": 2, "street_office_id": cuqiao["id"]}, communities[0:1] + communities[2:]),
    ]
    for params, expected in cases:
        limit = int(params["limit"])
        seen: list[str] = []
        cursor = 0
        pages = 0
        while True:
            page = ok(await catalog.get("/organizations", params={**params, "cursor": cursor}), 200)
            assert len(page["items"]) <= limit
            seen += ids(page)
            pages += 1
            if page["next_cursor"] is None:
                break
            cursor = page["next_cursor"]
        assert seen == [r["id"] for r in expected], params
        assert pages == -(-len(expected) // limit), params


async def two_communities_with_platforms(catalog: httpx.AsyncClient) -> tuple[JSON, list[JSON]]:
    """Longjin with two platforms and Qiaoxi with one; Longjin and its platforms."""
    street, longjin = await street_and_community(catalog)
    qiaoxi = await organization(
        catalog, "community", "Qiaoxi community", street_office_id=street["id"]
    )
    platforms = [
        await post(
            catalog,
            "/platforms",
            {"community_id": community["id"], "name": name, "type": kind, "location": where},
            at=OPENED_AT,
            headers=as_community(community),
        )
        for community, name, kind, where in [
            (longjin, "Longjin service centre", "centre", "8 Longjin Road"),
            (qiaoxi, "Qiaoxi service hall", "hall", "2 Qiaoxi Street"),
            (longjin, "Longjin online desk", "online", "https://longjin.example.org"),
        ]
    ]
    return longjin, platforms


async def test_platforms_list_by_community_and_page(catalog: httpx.AsyncClient) -> None:
    longjin, platforms = await two_communities_with_platforms(catalog)

    mine = ok(await catalog.get("/platforms", params={"community_id": longjin["id"]}), 200)
    assert [p["id"] for p in mine["items"]] == [platforms[0]["id"], platforms[2]["id"]]
    first = ok(await catalog.get("/platforms", params={"limit": 2}), 200)
    assert [p["id"] for p in first["items"]] == [platforms[0]["id"], platforms[1]["id"]]
    rest = ok(
        await catalog.get("/platforms", params={"limit": 2, "cursor": first["next_cursor"]}), 200
    )
    assert ([p["id"] for p in rest["items"]], rest["next_cursor"]) == ([platforms[2]["id"]], None)
    before = ok(await catalog.get("/platforms", params={"as_of": REGISTERED_AT}), 200)
    assert before["items"] == []


async def test_platforms_list_filters_by_ids(catalog: httpx.AsyncClient) -> None:
    _, platforms = await two_communities_with_platforms(catalog)

    # The README lists `ids` among the filters of GET /platforms, as of /organizations and /items.
    chosen = ok(await catalog.get("/platforms", params={"ids": [platforms[1]["id"]]}), 200)
    assert [p["id"] for p in chosen["items"]] == [platforms[1]["id"]]


async def test_a_platform_hosts_items_in_force_and_providers(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, community = await street_and_community(catalog)
    rejected = await propose(catalog, bureau["id"], "Door-to-door leaflet delivery")
    await post(
        catalog, f"/items/{rejected['id']}/rejection", {"reason": "Not a service"}, at=REVIEWED_AT
    )
    before = await head(catalog)

    def platform(**extra: Any) -> JSON:
        return {
            "community_id": community["id"],
            "name": "Longjin service centre",
            "type": "centre",
            "location": "8 Longjin Road",
            **extra,
        }

    longjin = as_community(community)
    offering_rejected = await catalog.post(
        "/platforms", json=platform(item_ids=[rejected["id"]]), headers=longjin
    )
    assert "rejected" in problem(offering_rejected, 409)
    street_as_provider = await catalog.post(
        "/platforms", json=platform(provider_ids=[street["id"]]), headers=longjin
    )
    assert "not a social_organization or social_work_agency" in problem(street_as_provider, 422)
    # Only a caller acting as a community for the street office's own id gets past the check of
    # who may open the platform, to the check of what the organization is.
    of_a_street = await catalog.post(
        "/platforms",
        json=platform(community_id=street["id"]),
        headers=acting(Role.COMMUNITY, street["id"]),
    )
    assert "not a community" in problem(of_a_street, 422)
    assert await head(catalog) == before
    assert ok(await catalog.get("/platforms"), 200)["items"] == []


# --- refusals -----------------------------------------------------------------------------------


async def test_a_community_refuses_only_items_on_none_of_its_lists(
    catalog: httpx.AsyncClient,
) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    _, community = await street_and_community(catalog)
    unlisted = await propose(catalog, bureau["id"], "Counting bicycles", duty_list="none")
    listed = await propose(catalog, bureau["id"], "Helping the census")
    url = f"/communities/{community['id']}/refusals"
    longjin = as_community(community)

    refusal = await post(
        catalog,
        url,
        {"item_id": unlisted["id"], "reason": "Not a community duty"},
        at=OPENED_AT,
        headers=longjin,
    )
    assert (refusal["item_id"], refusal["reason"]) == (unlisted["id"], "Not a community duty")
    before = await head(catalog)
    on_a_list = await catalog.post(
        url, json={"item_id": listed["id"], "reason": "Too much work"}, headers=longjin
    )
    detail = problem(on_a_list, 409)
    assert "committee_assisting" in detail
    assert "cannot refuse" in detail
    twice = await catalog.post(
        url, json={"item_id": unlisted["id"], "reason": "Still not ours"}, headers=longjin
    )
    assert "already refused" in problem(twice, 409)
    assert await head(catalog) == before
    assert ok(await catalog.get(url), 200) == [refusal]


# --- platforms and the guide ---------------------------------------------------------------------


async def guide_setup(
    catalog: httpx.AsyncClient, community_name: str = "Longjin community"
) -> JSON:
    """A community with a platform hosting an admitted and a merely proposed item, a refusal."""
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, community = await street_and_community(catalog, community_name)
    center = await provider(catalog, "Longjin residents' service center")
    visits = await admitted(
        catalog,
        bureau["id"],
        "Home visits for elderly people living alone",
        standard_unit_price={"amount": cny("30.00"), "unit": "person-time"},
    )
    club = await propose(catalog, bureau["id"], "Youth reading club", kind="social")
    unlisted = await propose(catalog, bureau["id"], "Counting bicycles", duty_list="none")
    platform = await post(
        catalog,
        "/platforms",
        {
            "community_id": community["id"],
            "name": "Longjin community service centre",
            "type": "centre",
            "location": "8 Longjin Road, Wuhou district",
            "opening_hours": "Mon-Sat 9:00-18:00",
            "item_ids": [visits["id"], club["id"]],
            "provider_ids": [center["id"]],
        },
        at=OPENED_AT,
        headers=as_community(community),
    )
    refusal = await post(
        catalog,
        f"/communities/{community['id']}/refusals",
        {"item_id": unlisted["id"], "reason": "Not a community duty"},
        at=OPENED_AT,
        headers=as_community(community),
    )
    return {
        "street": street,
        "community": community,
        "provider": center,
        "visits": visits,
        "club": club,
        "unlisted": unlisted,
        "platform": platform,
        "refusal": refusal,
    }


async def test_the_guide_lists_what_a_community_offers(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog)
    community_id = made["community"]["id"]
    assert made["platform"]["item_ids"] == [made["visits"]["id"], made["club"]["id"]]
    assert ok(await catalog.get(f"/platforms/{made['platform']['id']}"), 200) == made["platform"]

    response = await catalog.get(f"/communities/{community_id}/guide")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    guide = CommunityGuide.model_validate(response.json())
    assert guide.community.name == "Longjin community"
    assert guide.street_office is not None
    assert guide.street_office.name == "Cuqiao street office"
    assert guide.as_of is None
    [platform] = guide.platforms
    assert (platform.name, platform.location) == (
        "Longjin community service centre",
        "8 Longjin Road, Wuhou district",
    )
    assert [s.name for s in platform.services] == ["Home visits for elderly people living alone"]
    assert platform.services[0].standard_unit_price is not None
    assert platform.services[0].standard_unit_price.amount.amount == "30.00"
    assert [p.name for p in platform.providers] == ["Longjin residents' service center"]
    assert guide.services_by_kind == {ItemKind.PUBLIC: 1, ItemKind.SOCIAL: 0, ItemKind.MARKET: 0}
    assert [(r.item_name, r.reason) for r in guide.refused] == [
        ("Counting bicycles", "Not a community duty")
    ]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {"Accept": "text/html"}),
        ({}, {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}),
        ({"format": "html"}, {}),
    ],
)
async def test_the_guide_reads_as_a_page_for_people(
    catalog: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    made = await guide_setup(catalog)

    response = await catalog.get(
        f"/communities/{made['community']['id']}/guide", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for name in (
        "Longjin community",
        "Cuqiao street office",
        "Longjin community service centre",
        "Home visits for elderly people living alone",
        "Counting bicycles",
        "Not a community duty",
    ):
        assert name in page, name
    # Autoescaped: the apostrophe of the provider's name comes out as an entity.
    assert "Longjin residents&#39; service center" in page
    assert "Youth reading club" not in page


async def test_format_json_overrides_an_html_accept_header(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog)

    response = await catalog.get(
        f"/communities/{made['community']['id']}/guide",
        params={"format": "json"},
        headers={"Accept": "text/html"},
    )
    assert response.headers["content-type"].startswith("application/json")
    assert CommunityGuide.model_validate(response.json()).community.name == "Longjin community"


async def test_the_guide_page_escapes_names(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog, "Longjin <script>alert('x')</script> community")

    page = (
        await catalog.get(
            f"/communities/{made['community']['id']}/guide", params={"format": "html"}
        )
    ).text
    assert "<script>" not in page
    assert "Longjin &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; community" in page


async def test_the_guide_as_of_before_the_platform_opened(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog)
    url = f"/communities/{made['community']['id']}/guide"

    before = CommunityGuide.model_validate(
        ok(await catalog.get(url, params={"as_of": "2014-03-31T12:00:00+08:00"}), 200)
    )
    assert before.platforms == []
    assert before.refused == []
    assert before.services_by_kind == dict.fromkeys(ItemKind, 0)
    assert before.as_of == instant("2014-03-31T12:00:00+08:00")
    page = (
        await catalog.get(url, params={"as_of": "2014-03-31T12:00:00+08:00", "format": "html"})
    ).text
    assert "No service platforms are recorded" in page
    assert "Home visits for elderly people living alone" not in page
    after = CommunityGuide.model_validate(
        ok(await catalog.get(url, params={"as_of": OPENED_AT}), 200)
    )
    assert [p.name for p in after.platforms] == ["Longjin community service centre"]
    unborn = await catalog.get(url, params={"as_of": "2014-02-01T00:00:00+08:00"})
    assert problem(unborn, 404)


async def test_the_guide_is_only_for_communities(catalog: httpx.AsyncClient) -> None:
    street, _ = await street_and_community(catalog)

    response = await catalog.get(f"/communities/{street['id']}/guide")
    assert "not a community" in problem(response, 422)


# --- the feed ------------------------------------------------------------------------------------


async def test_the_feed_carries_every_change_once_in_commit_order(
    catalog: httpx.AsyncClient,
) -> None:
    made = await guide_setup(catalog)
    visits = made["visits"]
    # Refused writes, of every kind: none may leave an entry.
    unfunded = await catalog.post(f"/items/{made['club']['id']}/review", json={})
    assert unfunded.status_code == 201
    problem(await catalog.post(f"/items/{made['club']['id']}/admission", json={}), 422)
    by_the_street = acting(Role.STREET, made["street"]["id"])
    problem(
        await catalog.post(
            f"/items/{made['club']['id']}/admission",
            json={"funding": FUNDING_2014},
            headers=by_the_street,
        ),
        403,
    )
    problem(await catalog.post(f"/items/{visits['id']}/review", json={}), 409)
    problem(
        await catalog.post(
            "/organizations",
            json={
                "kind": "social_organization",
                "name": "Small club",
                "registration": registration("registered", "2999.99", 5),
            },
        ),
        422,
    )

    entries = await read_whole_feed(catalog)
    assert [e.position for e in entries] == list(range(1, len(entries) + 1))
    assert [e.event_type for e in entries] == [
        "organization.registered",  # bureau
        "organization.registered",  # street office
        "organization.registered",  # community
        "organization.registered",  # provider
        "item.proposed",
        "item.review_started",
        "item.admitted",
        "item.proposed",  # club
        "item.proposed",  # unlisted
        "platform.opened",
        "refusal.recorded",
        "item.review_started",  # club, the only write after the setup that succeeded
    ]
    versions: dict[str, int] = {}
    for entry in entries:
        record = CATALOG_EVENT_PAYLOADS[entry.event_type].model_validate(entry.payload)
        assert entry.event_type.split(".")[0] == entry.stream_type
        assert entry.payload["id"] == str(entry.stream_id)
        assert entry.payload["version"] == entry.stream_version
        assert record.model_dump(mode="json") == entry.payload
        versions[str(entry.stream_id)] = versions.get(str(entry.stream_id), 0) + 1
        assert entry.stream_version == versions[str(entry.stream_id)]
    assert versions[visits["id"]] == 3
    assert versions[made["club"]["id"]] == 2
    recorded = [e.recorded_at for e in entries]
    assert recorded == sorted(recorded)
    assert entries[6].payload == visits
    assert entries[6].occurred_at == instant(ADMITTED_AT)

    page = FeedPage.model_validate(
        ok(await catalog.get("/events", params={"after": 10, "limit": 1}), 200)
    )
    assert ([e.position for e in page.entries], page.next_after, page.head) == ([11], 11, 12)
    end = FeedPage.model_validate(ok(await catalog.get("/events", params={"after": 12}), 200))
    assert (end.entries, end.next_after, end.head) == ([], 12, 12)


async def test_concurrent_registrations_get_dense_distinct_positions(
    catalog: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(
            catalog.post(
                "/organizations", json={"kind": "street_office", "name": f"Street office {n}"}
            )
            for n in range(10)
        )
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 10

    entries = await read_whole_feed(catalog, limit=4)
    assert [e.position for e in entries] == list(range(1, 11))
    assert {str(e.stream_id) for e in entries} == ids
    assert all(e.stream_version == 1 for e in entries)
    listed = ok(await catalog.get("/organizations"), 200)["items"]
    assert {o["id"] for o in listed} == ids


async def test_concurrent_retries_with_one_code_make_one_record(
    catalog: httpx.AsyncClient,
) -> None:
    body = {"kind": "street_office", "name": "Cuqiao street office", "code": "11510107MB0000001X"}
    responses = await asyncio.gather(
        *(catalog.post("/organizations", json=body) for _ in range(10))
    )

    assert sorted(r.status_code for r in responses) == [200] * 9 + [201], [
        r.text for r in responses
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await head(catalog) == 1


async def test_refusals_of_an_unknown_community_are_a_404(catalog: httpx.AsyncClient) -> None:
    response = await catalog.get(f"/communities/{uuid4()}/refusals")
    assert "no organization" in problem(response, 404)


# --- who may do what -----------------------------------------------------------------------------

BUREAU_WRITES = [
    "register an organization",
    "propose an item",
    "start a review",
    "admit an item",
    "reject an item",
    "retire an item",
]


async def bureau_write(catalog: httpx.AsyncClient, write: str) -> tuple[JSON, str, JSON, str]:
    """Records from which the bureau could make this write now: (the records, the path to
    POST, its body, a path whose answer the write would change)."""
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, community = await street_and_community(catalog)
    center = await provider(catalog, "Longjin residents' service center")
    made = {"bureau": bureau, "street": street, "community": community, "provider": center}
    body: JSON
    if write == "register an organization":
        body = {"kind": "street_office", "name": "Jiangxi street office"}
        return made, "/organizations", body, "/organizations"
    if write == "propose an item":
        body = {
            "name": "Youth reading club",
            "kind": "social",
            "domain": "youth",
            "delivery_modes": ["on_site"],
            "duty_list": "none",
            "proposed_by": bureau["id"],
        }
        return made, "/items", body, "/items"
    item = await propose(catalog, bureau["id"])
    if write == "start a review":
        return made, f"/items/{item['id']}/review", {}, f"/items/{item['id']}"
    if write == "reject an item":
        body = {"reason": "Administrative work, not a service"}
        return made, f"/items/{item['id']}/rejection", body, f"/items/{item['id']}"
    await post(catalog, f"/items/{item['id']}/review", {}, at=REVIEWED_AT)
    if write == "admit an item":
        body = {"funding": FUNDING_2014}
        return made, f"/items/{item['id']}/admission", body, f"/items/{item['id']}"
    assert write == "retire an item", write
    await post(catalog, f"/items/{item['id']}/admission", {"funding": FUNDING_2014}, at=ADMITTED_AT)
    body = {"reason": "Merged into home care"}
    return made, f"/items/{item['id']}/retirement", body, f"/items/{item['id']}"


@pytest.mark.parametrize("write", BUREAU_WRITES)
async def test_only_the_civil_affairs_bureau_keeps_the_catalog(
    catalog: httpx.AsyncClient, write: str
) -> None:
    made, path, body, changed = await bureau_write(catalog, write)
    body = {"occurred_at": OPENED_AT, **body}
    # Every other role, each acting for an organization of its own kind where the catalog has one.
    others = {
        Role.FINANCE: WUHOU_FINANCE_ID,
        Role.STREET: made["street"]["id"],
        Role.COMMUNITY: made["community"]["id"],
        Role.PROVIDER: made["provider"]["id"],
        Role.AUDITOR: AUDIT_OFFICE_ID,
        Role.SERVICE: str(uuid4()),
    }
    assert set(others) == set(Role) - {Role.CIVIL_AFFAIRS}
    before = await head(catalog)
    as_it_was = ok(await catalog.get(changed), 200)

    for role, organization_id in others.items():
        refused = await catalog.post(path, json=body, headers=acting(role, organization_id))
        detail = problem(refused, 403)
        assert "only civil-affairs may" in detail, (role, detail)
        assert f"the caller is {role.value}" in detail, (role, detail)
        assert await head(catalog) == before, role
        assert ok(await catalog.get(changed), 200) == as_it_was, role

    # The same write, by the bureau, goes through: the refusals were for who asked, nothing else.
    ok(await catalog.post(path, json=body), 200, 201)
    assert await head(catalog) == before + 1
    assert ok(await catalog.get(changed), 200) != as_it_was


async def test_a_community_refuses_tasks_only_for_itself(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    street, longjin = await street_and_community(catalog)
    qiaoxi = await organization(
        catalog, "community", "Qiaoxi community", street_office_id=street["id"]
    )
    unlisted = await propose(catalog, bureau["id"], "Counting bicycles", duty_list="none")
    url = f"/communities/{longjin['id']}/refusals"
    body = {"occurred_at": OPENED_AT, "item_id": unlisted["id"], "reason": "Not a community duty"}
    before = await head(catalog)

    for_another = await catalog.post(url, json=body, headers=as_community(qiaoxi))
    detail = problem(for_another, 403)
    assert qiaoxi["id"] in detail
    assert longjin["id"] in detail
    for caller in (CIVIL_AFFAIRS, acting(Role.STREET, street["id"]), AUDITOR):
        problem(await catalog.post(url, json=body, headers=caller), 403)
    assert await head(catalog) == before
    assert ok(await catalog.get(url), 200) == []
    assert ok(await catalog.get(f"/communities/{qiaoxi['id']}/refusals"), 200) == []

    refusal = ok(await catalog.post(url, json=body, headers=as_community(longjin)))
    assert ok(await catalog.get(url), 200) == [refusal]
    assert await head(catalog) == before + 1


async def test_a_community_opens_platforms_only_for_itself(catalog: httpx.AsyncClient) -> None:
    street, longjin = await street_and_community(catalog)
    qiaoxi = await organization(
        catalog, "community", "Qiaoxi community", street_office_id=street["id"]
    )
    body = {
        "occurred_at": OPENED_AT,
        "community_id": longjin["id"],
        "name": "Longjin service centre",
        "type": "centre",
        "location": "8 Longjin Road",
    }
    before = await head(catalog)

    for_another = await catalog.post("/platforms", json=body, headers=as_community(qiaoxi))
    detail = problem(for_another, 403)
    assert qiaoxi["id"] in detail
    assert longjin["id"] in detail
    # The bureau keeps the catalog, but a community's platforms are the community's own.
    by_the_bureau = await catalog.post("/platforms", json=body)
    assert "only community may" in problem(by_the_bureau, 403)
    problem(
        await catalog.post("/platforms", json=body, headers=acting(Role.STREET, street["id"])),
        403,
    )
    assert await head(catalog) == before
    assert ok(await catalog.get("/platforms"), 200)["items"] == []

    platform = ok(await catalog.post("/platforms", json=body, headers=as_community(longjin)))
    assert platform["community_id"] == longjin["id"]
    assert ok(await catalog.get("/platforms"), 200)["items"] == [platform]


def signed(**changes: Any) -> dict[str, str]:
    """An Authorization header for a civil-affairs token, with some of its making changed."""
    settings = AuthSettings()
    made: dict[str, Any] = {
        "secret": settings.jwt_secret.get_secret_value(),
        "role": Role.CIVIL_AFFAIRS,
        "organization_id": UUID(CIVIL_AFFAIRS_ID),
        "subject": "civil-affairs-clerk",
        "audience": settings.jwt_audience,
        "ttl_seconds": 3600,
        **changes,
    }
    secret = made.pop("secret")
    return {"Authorization": f"Bearer {mint_token(secret, **made)}"}


async def test_a_request_without_a_valid_token_is_a_401(catalog: httpx.AsyncClient) -> None:
    bureau = await organization(catalog, "district_bureau", "Wuhou civil affairs bureau")
    item = await propose(catalog, bureau["id"])
    before = await head(catalog)
    as_of = {"occurred_at": OPENED_AT}
    requests: list[tuple[str, str, JSON | None]] = [
        ("GET", "/organizations", None),
        ("GET", f"/organizations/{bureau['id']}", None),
        ("GET", f"/organizations/{bureau['id']}/history", None),
        ("GET", "/items", None),
        ("GET", f"/items/{item['id']}", None),
        ("GET", "/platforms", None),
        ("GET", f"/communities/{uuid4()}/refusals", None),
        ("GET", "/events", None),
        ("POST", "/organizations", {**as_of, "kind": "street_office", "name": "Jiangxi"}),
        ("POST", f"/items/{item['id']}/review", as_of),
        ("POST", f"/items/{item['id']}/rejection", {**as_of, "reason": "No"}),
    ]

    for method, url, body in requests:
        response = await anonymously(catalog, method, url, json=body)
        assert "Authorization: Bearer" in problem(response, 401), (method, url)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="community-ledger"'

    other_secret = "not-the-secret-this-catalog-trusts-but-long-enough"
    invalid = {
        "signed with another secret": signed(secret=other_secret),
        "for another audience": signed(audience="another-system"),
        "expired": signed(ttl_seconds=-3600),
        "not a JWT": {"Authorization": "Bearer not-a-jwt"},
    }
    for why, headers in invalid.items():
        for method, url, body in requests:
            response = await catalog.request(method, url, json=body, headers=headers)
            problem(response, 401)
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], (why, url)
    basic = await catalog.get("/organizations", headers={"Authorization": "Basic Y2E6Y2E="})
    problem(basic, 401)
    assert basic.headers["WWW-Authenticate"].startswith("Bearer")

    assert await head(catalog) == before
    assert ok(await catalog.get(f"/items/{item['id']}"), 200) == item
    # The same token, made as it should be, is let in.
    assert ok(await catalog.get("/organizations", headers=signed()), 200)["items"] == [bureau]


async def test_the_guide_is_public(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog)
    url = f"/communities/{made['community']['id']}/guide"

    as_json = await anonymously(catalog, "GET", url)
    assert as_json.status_code == 200, as_json.text
    guide = CommunityGuide.model_validate(as_json.json())
    assert guide == CommunityGuide.model_validate(ok(await catalog.get(url), 200))
    assert [p.name for p in guide.platforms] == ["Longjin community service centre"]
    as_page = await anonymously(catalog, "GET", url, params={"format": "html"})
    assert as_page.status_code == 200, as_page.text
    assert as_page.headers["content-type"].startswith("text/html")
    assert "Home visits for elderly people living alone" in as_page.text
    # The records behind it are not public.
    refusals = await anonymously(catalog, "GET", f"/communities/{made['community']['id']}/refusals")
    problem(refusals, 401)


async def test_health_and_the_api_description_need_no_token(catalog: httpx.AsyncClient) -> None:
    for url in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        response = await anonymously(catalog, "GET", url)
        assert response.status_code == 200, (url, response.text)


async def test_each_feed_entry_names_who_caused_it(catalog: httpx.AsyncClient) -> None:
    made = await guide_setup(catalog)
    wang = acting(Role.CIVIL_AFFAIRS, CIVIL_AFFAIRS_ID, "wang.li")
    await post(catalog, f"/items/{made['club']['id']}/review", {}, at=OPENED_AT, headers=wang)
    # Reads and refused writes cause nothing.
    ok(await catalog.get("/items", headers=AUDITOR), 200)
    problem(
        await catalog.post(
            f"/items/{made['club']['id']}/rejection",
            json={"reason": "No"},
            headers=as_community(made["community"]),
        ),
        403,
    )

    bureau = Actor(
        role=Role.CIVIL_AFFAIRS, organization_id=CIVIL_AFFAIRS_ID, subject="civil-affairs-clerk"
    )
    longjin = Actor(
        role=Role.COMMUNITY, organization_id=made["community"]["id"], subject="community-clerk"
    )
    clerk_wang = Actor(role=Role.CIVIL_AFFAIRS, organization_id=CIVIL_AFFAIRS_ID, subject="wang.li")
    entries = await read_whole_feed(catalog)
    assert [(e.event_type, e.caused_by) for e in entries] == [
        ("organization.registered", bureau),
        ("organization.registered", bureau),
        ("organization.registered", bureau),
        ("organization.registered", bureau),
        ("item.proposed", bureau),
        ("item.review_started", bureau),
        ("item.admitted", bureau),
        ("item.proposed", bureau),
        ("item.proposed", bureau),
        ("platform.opened", longjin),
        ("refusal.recorded", longjin),
        ("item.review_started", clerk_wang),
    ]
    wire = ok(await catalog.get("/events", params={"after": 9}, headers=AUDITOR), 200)
    assert [e["caused_by"] for e in wire["entries"]] == [
        {
            "role": "community",
            "organization_id": made["community"]["id"],
            "subject": "community-clerk",
        },
        {
            "role": "community",
            "organization_id": made["community"]["id"],
            "subject": "community-clerk",
        },
        {"role": "civil-affairs", "organization_id": CIVIL_AFFAIRS_ID, "subject": "wang.li"},
    ]
