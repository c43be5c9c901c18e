"""Request ids, JSON logs and Prometheus metrics, as an operator would check them on a service."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.types import Message

from services.common.limits import BodySizeLimitMiddleware
from services.common.observability import (
    Metrics,
    bound_request_id,
    configure_logging,
    current_request_id,
    install_observability,
    propagate,
    propagate_async,
    propagate_from,
    request_id_headers,
)
from services.common.observability.logs import UVICORN_LOGGERS, level_number
from services.common.observability.metrics import MetricsMiddleware

GENERATED = re.compile(r"[0-9a-f]{32}")
ITEM_SERIES = 'http_requests_total{method="GET",route="/items/{item_id}",status="200"}'


def items_app(service: str = "items", **options: Any) -> FastAPI:
    """A tiny service: one templated route, one that fails, one that logs, one that writes."""
    app = FastAPI()
    log = logging.getLogger("tests.items")

    @app.get("/items/{item_id}", operation_id="getItem")
    async def get_item(item_id: int) -> dict[str, Any]:
        """An item, and the request id its handler saw."""
        log.info("looking up item %d", item_id)
        return {"id": item_id, "request_id": current_request_id()}

    @app.post("/items", operation_id="addItem", status_code=201)
    async def add_item(request: Request) -> dict[str, int]:
        """Accepts a body (for the body-size limit)."""
        return {"length": len(await request.body())}

    @app.get("/boom", operation_id="boom")
    async def boom() -> None:
        """Fails as a bug would."""
        raise RuntimeError("boom")

    install_observability(app, service, tracing=False, **options)
    return app


def client_for(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


def sample(exposition: str, series: str) -> float | None:
    """The value of one series in the text exposition, or None when it is absent."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were: configure_logging is process-wide."""
    names = ["", *UVICORN_LOGGERS]
    saved = {
        name: (
            logging.getLogger(name).handlers[:],
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            logging.getLogger(name).disabled,
        )
        for name in names
    }
    yield
    for name, (handlers, level, propagates, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagates
        logger.disabled = disabled


@pytest.fixture
def log_stream(restore_logging: None) -> io.StringIO:
    """The process's logs, configured as a service configures them, written here."""
    stream = io.StringIO()
    configure_logging("items", "info", stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line is one JSON object."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- X-Request-ID ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_request_without_an_id_is_given_one_and_it_is_echoed() -> None:
    async with client_for(items_app()) as client:
        response = await client.get("/items/7")
    request_id = response.headers["X-Request-ID"]
    assert GENERATED.fullmatch(request_id)
    assert response.json() == {"id": 7, "request_id": request_id}
    assert current_request_id() is None  # gone once the request is done


@pytest.mark.asyncio
async def test_a_sane_incoming_id_is_kept() -> None:
    sent = "Client-4.2_" + "x" * 117  # 128 characters: the longest kept
    async with client_for(items_app()) as client:
        response = await client.get("/items/7", headers={"X-Request-ID": sent})
    assert response.headers["X-Request-ID"] == sent
    assert response.json()["request_id"] == sent


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "sent",
    [b"x" * 129, b"has space", b"semi;colon", b'quo"te', b"new\tline", b"", "ünï".encode()],
    ids=["too-long", "space", "semicolon", "quote", "tab", "empty", "non-ascii"],
)
async def test_an_insane_incoming_id_is_replaced_not_echoed(sent: bytes) -> None:
    async with client_for(items_app()) as client:
        response = await client.get("/items/7", headers=[(b"X-Request-ID", sent)])
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.asyncio
async def test_two_incoming_ids_are_replaced_by_one() -> None:
    async with client_for(items_app()) as client:
        response = await client.get(
            "/items/7", headers=[("X-Request-ID", "a"), ("X-Request-ID", "b")]
        )
    assert response.headers.get_list("X-Request-ID") == [response.json()["request_id"]]
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.asyncio
async def test_every_answer_carries_the_id_a_404_and_an_unhandled_500_too() -> None:
    async with client_for(items_app(), raise_app_exceptions=False) as client:
        missing = await client.get("/nowhere", headers={"X-Request-ID": "r-404"})
        failed = await client.get("/boom", headers={"X-Request-ID": "r-500"})
    assert (missing.status_code, missing.headers["X-Request-ID"]) == (404, "r-404")
    assert (failed.status_code, failed.headers["X-Request-ID"]) == (500, "r-500")


# --- passing the id on ------------------------------------------------------------------------


def relay_app(downstream: httpx.AsyncBaseTransport) -> FastAPI:
    """A service that asks another one (through `downstream`) while handling a request."""
    app = FastAPI()

    @app.get("/relay/{item_id}", operation_id="relay")
    async def relay(item_id: int) -> dict[str, Any]:
        """What the other service answered."""
        async with httpx.AsyncClient(
            transport=downstream,
            base_url="http://downstream",
            event_hooks={"request": [propagate_async]},
        ) as client:
            answer = await client.get(f"/items/{item_id}")
        return {"downstream": answer.json(), "echoed": answer.headers["X-Request-ID"]}

    install_observability(app, "relay", tracing=False)
    return app


@pytest.mark.asyncio
async def test_the_async_hook_passes_the_id_to_the_service_called() -> None:
    downstream = items_app("downstream")
    async with client_for(relay_app(httpx.ASGITransport(app=downstream))) as client:
        response = await client.get("/relay/3", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "trace-me-1"
    assert response.json() == {
        "downstream": {"id": 3, "request_id": "trace-me-1"},
        "echoed": "trace-me-1",
    }


@pytest.mark.asyncio
async def test_the_sync_hook_passes_the_id_from_a_threadpool_endpoint() -> None:
    # As the ledger calls the catalog: a synchronous client, in a worker thread.
    seen: list[str | None] = []

    def catalog(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return httpx.Response(200, json={"items": []})

    outbound = httpx.Client(
        transport=httpx.MockTransport(catalog), event_hooks={"request": [propagate]}
    )
    app = FastAPI()

    @app.get("/check", operation_id="check")
    def check() -> dict[str, int]:
        """Calls the catalog synchronously."""
        return {"status": outbound.get("http://catalog/items").status_code}

    install_observability(app, "ledger", tracing=False)
    async with client_for(app) as client:
        response = await client.get("/check", headers={"X-Request-ID": "from-thread"})
    assert response.json() == {"status": 200}
    assert seen == ["from-thread"]


def test_outside_a_request_nothing_is_added_and_a_header_set_by_hand_wins() -> None:
    seen: list[str | None] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(service)) as client:
        propagate_from(client)
        propagate_from(client)  # once is enough: the hook is not added twice
        assert client.event_hooks["request"] == [propagate]
        client.get("http://service/")
        client.get("http://service/", headers={"X-Request-ID": "chosen"})
    assert seen == [None, "chosen"]
    assert request_id_headers() == {}


def test_work_outside_requests_can_bind_an_id_of_its_own(log_stream: io.StringIO) -> None:
    # As the notifier's worker might, around each poll of a feed.
    seen: list[str | None] = []

    def ledger(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("X-Request-ID"))
        return httpx.Response(200, json={"entries": []})

    with httpx.Client(transport=httpx.MockTransport(ledger)) as client:
        propagate_from(client)
        with bound_request_id() as poll_id:
            logging.getLogger("tests.worker").info("polling")
            client.get("http://ledger/events")
        with bound_request_id("poll-7"), bound_request_id("not sane!") as replaced:
            assert GENERATED.fullmatch(replaced)
    assert GENERATED.fullmatch(poll_id)
    assert seen == [poll_id]
    assert lines(log_stream)[0]["request_id"] == poll_id
    assert current_request_id() is None


@pytest.mark.asyncio
async def test_propagate_from_gives_an_async_client_the_async_hook() -> None:
    async with httpx.AsyncClient() as client:
        propagate_from(client)
        assert client.event_hooks["request"] == [propagate_async]


# --- JSON logs ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_one_json_access_line_per_request_with_id_route_status_and_duration(
    log_stream: io.StringIO,
) -> None:
    async with client_for(items_app()) as client:
        response = await client.get("/items/42?verbose=1")
    access = [line for line in lines(log_stream) if line["logger"] == "services.access"]
    assert len(access) == 1
    line = access[0]
    assert line["level"] == "INFO"
    assert line["service"] == "items"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["method"] == "GET"
    assert line["route"] == "/items/{item_id}"
    assert line["path"] == "/items/42"  # no query string: it may carry anything
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["message"].startswith("GET /items/42 200 ")
    moment = datetime.fromisoformat(line["time"])
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)
    assert next(iter(line)) == "time"


@pytest.mark.asyncio
async def test_the_apps_own_log_lines_carry_the_request_id(log_stream: io.StringIO) -> None:
    async with client_for(items_app()) as client:
        response = await client.get("/items/5")
    (line,) = [line for line in lines(log_stream) if line["logger"] == "tests.items"]
    assert line["message"] == "looking up item 5"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["service"] == "items"


@pytest.mark.asyncio
async def test_a_failed_request_is_logged_with_status_500_and_the_error(
    log_stream: io.StringIO,
) -> None:
    async with client_for(items_app(), raise_app_exceptions=False) as client:
        response = await client.get("/boom")
    (line,) = [line for line in lines(log_stream) if line["logger"] == "services.access"]
    assert (line["route"], line["status"], line["error"]) == ("/boom", 500, "RuntimeError")
    assert line["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.asyncio
async def test_probes_and_scrapes_are_logged_at_debug_only(log_stream: io.StringIO) -> None:
    async with client_for(items_app()) as client:
        await client.get("/metrics")
        await client.get("/items/1")
    assert [line["route"] for line in lines(log_stream) if "route" in line] == ["/items/{item_id}"]
    async with client_for(items_app(quiet_routes=())) as client:
        await client.get("/metrics")
    assert [line["route"] for line in lines(log_stream) if "route" in line][-1] == "/metrics"


def test_a_line_outside_a_request_has_no_request_id_and_exceptions_keep_their_traceback(
    log_stream: io.StringIO,
) -> None:
    log = logging.getLogger("tests.worker")
    log.warning("feed %s is %d behind", "ledger", 3)
    try:
        raise ValueError("bad page")
    except ValueError:
        log.exception("poll failed")
    warning, error = lines(log_stream)
    assert warning["message"] == "feed ledger is 3 behind"
    assert warning["level"] == "WARNING"
    assert "request_id" not in warning
    assert error["level"] == "ERROR"
    assert "ValueError: bad page" in error["exc_info"]


def test_uvicorns_loggers_write_through_the_same_handler_and_its_access_log_is_off(
    log_stream: io.StringIO,
) -> None:
    # The arguments serve() passes to uvicorn.run: uvicorn keeps its hands off logging.
    config = uvicorn.Config(FastAPI(), log_config=None, access_log=False, log_level="info")
    config.configure_logging()
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 12, extra={"color_message": "\x1b[1mStarted\x1b[0m"}
    )
    logging.getLogger("uvicorn.access").info('127.0.0.1:1 - "GET / HTTP/1.1" 200')
    (line,) = lines(log_stream)
    assert line["logger"] == "uvicorn.error"
    assert line["message"] == "Started server process [12]"
    assert line["service"] == "items"
    assert "color_message" not in line


def test_text_lines_for_a_terminal(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("ledger", "debug", json=False, stream=stream)
    logging.getLogger("tests.text").debug("hello")
    assert re.fullmatch(r"\S+ \S+ DEBUG tests\.text \[-\] hello\n", stream.getvalue())


def test_levels_are_named_as_settings_name_them() -> None:
    assert level_number("info") == logging.INFO
    assert level_number("WARNING") == logging.WARNING
    assert level_number("trace") == 5
    assert level_number(logging.ERROR) == logging.ERROR
    with pytest.raises(ValueError, match="unknown log level"):
        level_number("loud")


# --- Prometheus metrics ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_requests_are_counted_and_timed_by_route_template() -> None:
    async with client_for(items_app()) as client:
        await client.get("/items/1")
        response = await client.get("/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    assert f"{ITEM_SERIES} 1.0" in text.splitlines()
    assert "/items/1" not in text  # the raw path never becomes a label
    labels = 'method="GET",route="/items/{item_id}"'
    assert sample(text, f'http_request_duration_seconds_bucket{{le="0.005",{labels}}}') is not None
    assert sample(text, f'http_request_duration_seconds_bucket{{le="+Inf",{labels}}}') == 1.0
    assert sample(text, f"http_request_duration_seconds_count{{{labels}}}") == 1.0
    assert sample(text, 'target_info{service="items"}') == 1.0


@pytest.mark.asyncio
async def test_unknown_paths_are_unmatched_and_unknown_methods_other() -> None:
    async with client_for(items_app()) as client:
        for n in range(3):
            await client.get(f"/random/{n}")
        await client.post("/items/1")  # the path is known, the method is not: 405
        await client.request("BREW", "/items/1")
        text = await scrape(client)
    assert sample(text, 'http_requests_total{method="GET",route="unmatched",status="404"}') == 3.0
    assert "/random/" not in text
    series = 'http_requests_total{method="POST",route="/items/{item_id}",status="405"}'
    assert sample(text, series) == 1.0
    assert sample(text, 'http_requests_total{method="other",route="/items/{item_id}",status="405"}')


@pytest.mark.asyncio
async def test_an_answer_given_before_routing_is_counted_under_its_route() -> None:
    app = FastAPI()

    @app.post("/items", operation_id="addItem")
    async def add_item(request: Request) -> dict[str, int]:
        """Accepts a body."""
        return {"length": len(await request.body())}

    # As guard_requests adds it: before install_observability, so inside its middleware.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1024)
    install_observability(app, "items", tracing=False)
    async with client_for(app) as client:
        response = await client.post("/items", content=b"x" * 2000)
        text = await scrape(client)
    assert response.status_code == 413
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])
    assert sample(text, 'http_requests_total{method="POST",route="/items",status="413"}') == 1.0


@pytest.mark.asyncio
async def test_routes_of_included_routers_are_labelled_with_their_whole_template() -> None:
    router = APIRouter(prefix="/contracts")

    @router.get("/{contract_id}", operation_id="getContract")
    async def get_contract(contract_id: str) -> dict[str, str]:
        """A contract."""
        return {"id": contract_id}

    app = FastAPI()
    app.include_router(router, prefix="/v1")
    app.include_router(router, prefix="/v2")  # the same route under two prefixes
    install_observability(app, "ledger", tracing=False)
    async with client_for(app) as client:
        await client.get("/v1/contracts/c-1")
        await client.get("/v2/contracts/c-2")
        await client.delete("/v2/contracts/c-3")
        text = await scrape(client)
    for version, method, status in [("v1", "GET", 200), ("v2", "GET", 200), ("v2", "DELETE", 405)]:
        route = f"/{version}/contracts/{{contract_id}}"
        series = f'http_requests_total{{method="{method}",route="{route}",status="{status}"}}'
        assert sample(text, series) == 1.0, series


@pytest.mark.asyncio
async def test_two_apps_in_one_process_keep_separate_registries() -> None:
    first, second = items_app("first"), items_app("second")
    async with client_for(first) as one, client_for(second) as two:
        await one.get("/items/1")
        await one.get("/items/2")
        await two.get("/items/1")
        first_text, second_text = await scrape(one), await scrape(two)
    assert sample(first_text, ITEM_SERIES) == 2.0
    assert sample(second_text, ITEM_SERIES) == 1.0
    assert sample(second_text, 'target_info{service="second"}') == 1.0
    assert first.state.metrics.registry is not second.state.metrics.registry


@pytest.mark.asyncio
async def test_openmetrics_is_answered_to_a_scraper_that_asks_for_it() -> None:
    async with client_for(items_app()) as client:
        await client.get("/items/1")
        accept = "application/openmetrics-text; version=1.0.0"
        response = await client.get("/metrics", headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert f"{ITEM_SERIES} 1.0" in response.text.splitlines()


def test_observability_is_installed_once() -> None:
    with pytest.raises(RuntimeError, match="already installed"):
        install_observability(items_app(), "items", tracing=False)


def test_metrics_stay_out_of_the_openapi_document() -> None:
    paths = items_app().openapi()["paths"]
    assert "/metrics" not in paths
    assert "/items/{item_id}" in paths


@pytest.mark.asyncio
async def test_services_add_their_own_metrics_refreshed_at_scrape() -> None:
    app = items_app("ledger")
    metrics: Metrics = app.state.metrics
    lag = metrics.gauge("feed_lag_events", "Events published but not yet followed", ["feed"])
    positions = {"ledger": 10}
    writes = metrics.counter("ledger_writes_total", "Events written")

    @metrics.on_scrape
    async def read_lag() -> None:  # as a service reads its database
        lag.labels(feed="ledger").set(positions["ledger"] - 4)

    def checkpoint_age() -> Iterator[Metric]:
        yield GaugeMetricFamily("checkpoint_age_seconds", "Age of the last checkpoint", 42.0)

    metrics.collector(checkpoint_age)
    writes.inc(3)
    async with client_for(app) as client:
        first = await scrape(client)
        positions["ledger"] = 25
        second = await scrape(client)
    assert sample(first, 'feed_lag_events{feed="ledger"}') == 6.0
    assert sample(second, 'feed_lag_events{feed="ledger"}') == 21.0
    assert sample(second, "checkpoint_age_seconds") == 42.0
    assert sample(second, "ledger_writes_total") == 3.0


@pytest.mark.asyncio
async def test_a_failing_or_slow_scrape_callback_keeps_old_values_and_is_counted() -> None:
    metrics = Metrics("notifier", scrape_timeout=0.05)
    backlog = metrics.gauge("deliveries_due", "Deliveries waiting to be sent")
    backlog.set(5)

    @metrics.on_scrape
    async def broken() -> None:
        raise ConnectionError("database down")

    @metrics.on_scrape
    async def hung() -> None:
        import asyncio

        await asyncio.sleep(10)

    body, content_type = await metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert sample(text, "deliveries_due") == 5.0
    name = "test_a_failing_or_slow_scrape_callback_keeps_old_values_and_is_counted.<locals>"
    errors = "metrics_scrape_callback_errors_total"
    assert sample(text, f'{errors}{{callback="{name}.broken"}}') == 1.0
    assert sample(text, f'{errors}{{callback="{name}.hung"}}') == 1.0


@pytest.mark.asyncio
async def test_a_client_that_leaves_before_any_answer_is_counted_499() -> None:
    metrics = Metrics("items")

    async def app_seeing_a_disconnect(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "http.disconnect"  # then nobody to answer

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "method": "POST", "path": "/items", "headers": []}
    await MetricsMiddleware(app_seeing_a_disconnect, metrics=metrics)(scope, receive, send)
    text = (await metrics.render())[0].decode()
    assert sample(text, 'http_requests_total{method="POST",route="unmatched",status="499"}') == 1.0
