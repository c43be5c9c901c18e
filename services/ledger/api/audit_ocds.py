"""OCDS 1.1 exports for overseers: each contract's procurement process as releases and a record.

The mapping from ledger events to OCDS releases is documented in `services.ledger.audit.ocds`.
Bodies are OCDS packages, not this API's own models: their schema is OCDS's, linked from here.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from services.common.auth import Authenticated, CurrentActor
from services.common.errors import NotFound
from services.common.permissions import require_role
from services.common.problems import PROBLEM_RESPONSES
from services.ledger.api.deps import Cursor, Ledger
from services.ledger.application.access import OVERSEERS
from services.ledger.audit.ocds import (
    DEFAULT_OCID_PREFIX,
    PUBLISHER,
    Reading,
    check_prefix,
    contract_process,
    ocds_json,
    record_package,
    release_package,
)

OCDS_SCHEMA = "https://standard.open-contracting.org/schema/1__1__5/"


class OcdsResponse(Response):
    """An OCDS package as JSON; amounts are JSON numbers written from exact decimals."""

    media_type = "application/json"


def _package_schema(kind: str, items: str) -> dict[str, Any]:
    # Only the package's envelope: the releases inside follow OCDS's own release schema.
    return {
        "type": "object",
        "required": ["uri", "version", "publishedDate", "publisher", items],
        "properties": {
            "uri": {"type": "string"},
            "version": {"type": "string", "enum": ["1.1"]},
            "publishedDate": {"type": "string", "format": "date-time"},
            "publisher": {"type": "object"},
            "packages": {"type": "array", "items": {"type": "string"}},
            items: {"type": "array", "items": {"type": "object"}},
        },
        "externalDocs": {
            "description": f"OCDS 1.1 {kind} package schema",
            "url": f"{OCDS_SCHEMA}{kind}-package-schema.json",
        },
    }


def _ok(kind: str, items: str, description: str, **extra: Any) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {"application/json": {"schema": _package_schema(kind, items)}},
            **extra,
        }
    }


def _answer(package: dict[str, Any], headers: dict[str, str] | None = None) -> OcdsResponse:
    return OcdsResponse(ocds_json(package), headers=headers)


def ocds_router(ocid_prefix: str = DEFAULT_OCID_PREFIX, *, publisher: str = PUBLISHER) -> APIRouter:
    """The OCDS routes, naming processes with `ocid_prefix` (LEDGER_OCID_PREFIX)."""
    check_prefix(ocid_prefix)
    router = APIRouter(
        dependencies=[Authenticated],
        prefix="/audit/ocds",
        tags=["audit"],
        responses=PROBLEM_RESPONSES,
    )

    @router.get(
        "/contracts/{contract_id}/releases",
        name="getOcdsContractReleases",
        operation_id="getOcdsContractReleases",
        response_class=OcdsResponse,
        responses=_ok(
            "release", "releases", "An OCDS release package: one release per ledger event"
        ),
    )
    def get_ocds_contract_releases(
        contract_id: UUID, request: Request, ledger: Ledger, caller: CurrentActor
    ) -> OcdsResponse:
        """Export a contract's procurement process as an OCDS release package."""
        process = contract_process(ledger, contract_id, by=caller, prefix=ocid_prefix)
        return _answer(release_package([process], uri=str(request.url), publisher=publisher))

    @router.get(
        "/contracts/{contract_id}/record",
        operation_id="getOcdsContractRecord",
        response_class=OcdsResponse,
        responses=_ok(
            "record",
            "records",
            "An OCDS record package: the process's releases and its compiled release",
        ),
    )
    def get_ocds_contract_record(
        contract_id: UUID, request: Request, ledger: Ledger, caller: CurrentActor
    ) -> OcdsResponse:
        """Export a contract's procurement process as an OCDS record with its compiled release."""
        process = contract_process(ledger, contract_id, by=caller, prefix=ocid_prefix)
        releases = request.url_for("getOcdsContractReleases", contract_id=str(contract_id))
        package = record_package(
            [process], uri=str(request.url), packages=[str(releases)], publisher=publisher
        )
        return _answer(package)

    @router.get(
        "/releases",
        operation_id="listOcdsReleases",
        response_class=OcdsResponse,
        responses=_ok(
            "release",
            "releases",
            "An OCDS release package of a page of contracts' processes, oldest contract first; "
            "a page without contracts is 404, as OCDS has no empty package",
            headers={
                "Link": {
                    "description": 'The next page, as `<url>; rel="next"`; absent on the last',
                    "schema": {"type": "string"},
                }
            },
        ),
    )
    def list_ocds_releases(
        request: Request,
        ledger: Ledger,
        caller: CurrentActor,
        budget_id: Annotated[
            UUID | None, Query(description="Only the contracts funded by this budget")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100, description="Contracts per page")] = 20,
        cursor: Cursor = 0,
    ) -> OcdsResponse:
        """Export the releases of a page of contracts' processes as one OCDS release package."""
        # Refused before listing: `list_contracts` would narrow a party's list, not refuse it.
        require_role(caller, OVERSEERS, "read OCDS exports")
        page = ledger.list_contracts(
            budget_id=budget_id,
            purchaser_id=None,
            implementer_id=None,
            provider_id=None,
            after=cursor,
            limit=limit,
            by=caller,
        )
        if not page.ids:
            # OCDS has no empty release package: a package holds at least one release.
            raise NotFound(
                "no contracts on this page"
                + (f" of budget {budget_id}" if budget_id else "")
                + "; an OCDS release package needs at least one release"
            )
        # Read after the listing, so that every contract on the page exists at this position.
        reading = Reading(ledger.reads.head())
        processes = [
            contract_process(ledger, i, by=caller, prefix=ocid_prefix, reading=reading)
            for i in page.ids
        ]
        headers = None
        if page.next_cursor is not None:
            following = request.url.include_query_params(cursor=page.next_cursor)
            headers = {"Link": f'<{following}>; rel="next"'}
        package = release_package(processes, uri=str(request.url), publisher=publisher)
        return _answer(package, headers)

    return router


router = ocds_router()
"""The routes with the default ocid prefix; `ocds_router(settings.ocid_prefix)` for another."""
