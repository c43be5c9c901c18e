"""Each service's own OpenAPI, fuzzed by schemathesis against the services as real processes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.actors import AUDITOR, CIVIL_AFFAIRS, FINANCE
from tests.support.catalog import Parties, catalog_client, seed_parties
from tests.support.grants_api import award_grant
from tests.support.ledger_api import allocate, cny, deliver, ok, open_budget, sign_contract
from tests.support.processes import SERVICES, RunningService

PathParameters = dict[str, Any] | None
PathParametersHook = Callable[
    [schemathesis.HookContext, PathParameters], st.SearchStrategy[PathParameters]
]

# No 5xx; every status code, content type and body exactly as the service's OpenAPI says.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Requests per operation in the fuzzing phase, on top of the examples and coverage phases:
# enough to reach past validation, few enough for ~70 operations in ~70 s on 2 cores.
MAX_EXAMPLES = 25
# A fixed seed and derandomized Hypothesis: the same requests in the same order on every run.
SEED = 20140414
PAYMENT_REFERENCE = "GK-2014-06-000123"


def fuzz_config(base_url: str) -> schemathesis.Config:
    """Bounded and reproducible; built here, so no `schemathesis.toml` in the tree applies."""
    return schemathesis.Config.from_dict(
        {
            "base-url": base_url,
            "seed": SEED,
            "request-timeout": 10,
            # Hypothesis times its own generation; a busy CI runner must not fail the test.
            "suppress-health-check": ["too_slow"],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                # Shrinking re-sends many requests; the report shows the request as it was sent.
                "no-shrink": True,
                # Nothing written to `.hypothesis/`, nothing replayed from an earlier run.
                "database": "none",
            },
        }
    )


@pytest.fixture(scope="module")
def loopback_without_proxy() -> Iterator[None]:
    """Keep schemathesis' `requests` calls to 127.0.0.1 away from any HTTP(S)_PROXY."""
    with pytest.MonkeyPatch.context() as patch:
        # `requests` reads the environment on every request; httpx callers pass trust_env=False.
        bypass = [os.environ.get("NO_PROXY", ""), os.environ.get("no_proxy", ""), "127.0.0.1"]
        patch.setenv("NO_PROXY", ",".join(part for part in bypass if part))
        patch.delenv("no_proxy", raising=False)
        yield


async def seed_ledger(ledger_url: str, parties: Parties) -> dict[str, str]:
    """A budget, an allocation, a contract paid in part, a grant; ids by path parameter."""
    async with httpx.AsyncClient(base_url=ledger_url, trust_env=False, timeout=10) as ledger:
        budget = await open_budget(ledger)
        allocation = await allocate(ledger, budget["id"], "1000000.00", parties.street_office_id)
        contract = await sign_contract(ledger, budget["id"], allocation, "360000.00", parties)
        cid, street = contract["id"], parties.street
        ok(await ledger.post(f"/contracts/{cid}/activation", json={}, headers=street))
        delivery = await deliver(ledger, contract, "30000.00")
        acceptance = f"/contracts/{cid}/deliveries/{delivery['id']}/acceptance"
        ok(await ledger.post(acceptance, json={}, headers=street))
        ok(
            await ledger.post(
                f"/contracts/{cid}/payments",
                json={"reference": PAYMENT_REFERENCE, "amount": cny("10000.00")},
                headers=street,
            )
        )
        grant = await award_grant(ledger, budget["id"], allocation, "50000.00", parties)
    return {
        "budget_id": budget["id"],
        "allocation_id": allocation["id"],
        "project_id": contract["project_id"],
        "contract_id": cid,
        "delivery_id": delivery["id"],
        "reference": PAYMENT_REFERENCE,
        "grant_id": grant["id"],
        "stream_id": cid,
    }


def seed_catalog(catalog_url: str, parties: Parties) -> dict[str, str]:
    """A platform in the seeded community; the catalog's ids by path parameter."""
    with catalog_client(catalog_url) as catalog:
        platform = ok(
            catalog.post(
                "/platforms",
                json={
                    "community_id": parties.community_id,
                    "name": "Longjin service centre",
                    "type": "centre",
                    "location": "8 Longjin Road",
                    "occurred_at": "2014-03-31T09:00:00+08:00",
                },
                headers=parties.community,
            )
        )
    return {
        "organization_id": parties.provider_id,
        "item_id": parties.item_id,
        "community_id": parties.community_id,
        "platform_id": platform["id"],
    }


def seed_notifier(notifier_url: str) -> dict[str, str]:
    """A subscription of finance's, to a public address no event type it names will reach."""
    with httpx.Client(base_url=notifier_url, trust_env=False, timeout=10) as notifier:
        subscription = ok(
            notifier.post(
                "/subscriptions",
                json={"url": "https://93.184.216.34/hooks", "event_types": ["fuzz.never"]},
                headers=FINANCE,
            )
        )
    return {"subscription_id": subscription["id"]}


@pytest.fixture(scope="module")
def fuzz_parties(services: dict[str, RunningService]) -> Parties:
    """The organizations whose records are seeded, and as whom the fuzzer calls."""
    return seed_parties(services["catalog"].url)


# The caller each write is fuzzed as, where it is not the street office: one allowed to reach
# past authorization, since fuzzing as a caller who is always refused tests only the refusal.
WRITERS = {
    "openBudget": FINANCE,
    "adjustBudget": FINANCE,
    "allocate": FINANCE,
    "adjustAllocation": FINANCE,
    "registerOrganization": CIVIL_AFFAIRS,
    "proposeItem": CIVIL_AFFAIRS,
    "startItemReview": CIVIL_AFFAIRS,
    "admitItem": CIVIL_AFFAIRS,
    "rejectItem": CIVIL_AFFAIRS,
    "retireItem": CIVIL_AFFAIRS,
    "takeCheckpoint": AUDITOR,
    "createSubscription": FINANCE,
    "updateSubscription": FINANCE,
    "deleteSubscription": FINANCE,
    "rotateSubscriptionSecret": FINANCE,
    "resendDelivery": FINANCE,
    "resendDeadDeliveries": FINANCE,
}
PARTY_WRITERS = {
    "refuseTask": "community",
    "openPlatform": "community",
    "reportDelivery": "community",
    "applyToProject": "provider",
    "withdrawApplication": "provider",
    "lodgeObjection": "provider",
    "reportGrantUse": "provider",
}


def caller_for(case: schemathesis.Case[Any], parties: Parties) -> dict[str, str]:
    """Reads as the auditor, who sees everything; each write as a caller allowed to make it."""
    if case.method.upper() == "GET":
        return AUDITOR
    operation_id = str(case.operation.definition.raw.get("operationId", ""))
    if operation_id in WRITERS:
        return WRITERS[operation_id]
    party: dict[str, str] = getattr(parties, PARTY_WRITERS.get(operation_id, "street"))
    return party


@pytest.fixture(scope="module")
def seeded_ids(
    services: dict[str, RunningService], fuzz_parties: Parties
) -> dict[str, dict[str, str]]:
    """Records made before fuzzing, by service and by the path parameter that names them."""
    catalog_url = services["catalog"].url
    parties = fuzz_parties
    return {
        "catalog": seed_catalog(catalog_url, parties),
        "ledger": asyncio.run(seed_ledger(services["ledger"].url, parties)),
        "notifier": seed_notifier(services["notifier"].url),
    }


def sometimes_seeded(ids: Mapping[str, str]) -> PathParametersHook:
    """A `flatmap_path_parameters` hook: the generated ids, or the seeded records' ids."""

    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: PathParameters
    ) -> st.SearchStrategy[PathParameters]:
        known = {name: ids[name] for name in path_parameters or {} if name in ids}
        if not known:
            return st.just(path_parameters)
        # Random ids only ever reach the 404; existing ones reach the rules behind it.
        return st.sampled_from([path_parameters, {**(path_parameters or {}), **known}])

    return flatmap_path_parameters


@pytest.fixture(scope="module", params=SERVICES)
def service_schema(
    request: pytest.FixtureRequest,
    services: dict[str, RunningService],
    seeded_ids: dict[str, dict[str, str]],
    loopback_without_proxy: None,
) -> schemathesis.BaseSchema:
    """The OpenAPI one running service serves, set to fuzz that service."""
    name: str = request.param
    url = services[name].url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=fuzz_config(url))
    schema.hook("flatmap_path_parameters")(sometimes_seeded(seeded_ids[name]))
    return schema


@pytest.fixture
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Give the test item the `_nodeid` attribute schemathesis 4.32.5 reads."""
    # pytest 9.2 keeps node ids in `_id`; schemathesis' lazy schemas still read and rename
    # `_nodeid` around each operation, and fail with AttributeError without it.
    vars(request.node)["_nodeid"] = request.node.nodeid


lazy_schema = schemathesis.pytest.from_fixture("service_schema")


@pytest.mark.usefixtures("node_id_for_schemathesis")
@lazy_schema.parametrize()
def test_every_response_is_documented_and_never_a_server_error(
    case: schemathesis.Case[Any], fuzz_parties: Parties
) -> None:
    # Generated headers (an Idempotency-Key, say) stay; the caller's token is added to them.
    headers: dict[str, str] = {str(k): str(v) for k, v in dict(case.headers or {}).items()}
    case.call_and_validate(headers={**headers, **caller_for(case, fuzz_parties)}, checks=CHECKS)
