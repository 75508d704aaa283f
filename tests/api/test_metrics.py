"""/metrics: the Prometheus text format, bounded token-free labels, link bytes, upstream errors,
state gauges read from the database, optional bearer auth, one registry per app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from maxgate.api import metrics as metrics_module
from maxgate.api.files import serve_link
from maxgate.api.metrics import Metrics, MetricsMiddleware
from maxgate.app import create_app
from maxgate.domain.messenger import InboundSink
from maxgate.domain.records import FileRecord, Instance
from maxgate.domain.records import Message as JournalMessage
from maxgate.errors import StoreError, UpstreamError, UpstreamFileGone
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from maxgate.upstream.counting import CountingUpstream
from tests.api._support import CONTACT, assert_error, ok
from tests.api.conftest import GatewayFactory
from tests.conftest import Account

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls) in samples if n == name and label in dict(ls)}


async def scrape(client: httpx.AsyncClient, **kwargs: Any) -> Samples:
    response = await client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


async def test_request_counts_and_latency_by_method_and_status(
    client: httpx.AsyncClient, account: Account
) -> None:
    for _ in range(3):
        ok(await client.get(account.url("getStateInstance")))
    ok(await client.get(account.url("GETSTATEINSTANCE", v3=False)))  # one method, any spelling
    await client.get(account.url("getStateInstance").replace(account.token, "0" * 50))
    ok(await client.get("/health"))
    samples = await scrape(client)
    requests = "maxgate_requests_total"
    assert value(samples, requests, method="getStateInstance", status="200") == 4
    assert value(samples, requests, method="getStateInstance", status="401") == 1
    assert value(samples, requests, method="/health", status="200") == 1
    count = "maxgate_request_duration_seconds_count"
    assert value(samples, count, method="getStateInstance") == 5
    assert value(samples, "maxgate_request_duration_seconds_sum", method="/health") > 0
    buckets = {
        dict(ls)["le"]
        for (n, ls) in samples
        if n == "maxgate_request_duration_seconds_bucket" and dict(ls)["method"] == "/health"
    }
    assert {"0.001", "1.0", "60.0", "+Inf"} <= buckets
    assert value(samples, "maxgate_info", version=metrics_module.__version__) == 1


async def test_labels_are_bounded_and_never_carry_a_token(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    partner = runtime.settings.partner_token.reveal()
    await client.get(account.url("getSettings"))
    await client.get(account.url("noSuchMethod"))
    await client.get(account.url("noSuchMethod") + "/x")
    await client.get(account.url("deleteNotification") + "/12345")  # DELETE only: 405
    await client.get(f"/partner/getInstances/{partner}")
    await client.get(f"/partner/nope/{partner}")
    await client.get(f"/files/{account.id}/abc/{account.token}?exp=1&sig=x")
    await client.get(f"/nowhere/{account.token}")
    await client.get("/docs/assets/docs.js")
    response = await client.get("/metrics")
    assert account.token not in response.text and partner not in response.text
    methods = label_values(parse(response.text), "maxgate_requests_total", "method")
    assert methods == {
        "getSettings",
        "unknown",
        "deleteNotification",
        "partner:getInstances",
        "partner:unknown",
        "files",
        "/docs/assets/{name}",
    }


async def test_bytes_served_by_the_link_route(client: httpx.AsyncClient, account: Account) -> None:
    data = b"x" * 5000
    response = await client.post(
        account.url("uploadFile"),
        content=data,
        headers={"content-type": "application/octet-stream", "GA-Filename": "x.bin"},
    )
    link = ok(response)["urlFile"]
    assert (await client.get(link)).content == data
    assert (await client.head(link)).status_code == 200  # headers only: no bytes
    ranged = await client.get(link, headers={"range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    samples = await scrape(client)
    assert value(samples, "maxgate_file_link_bytes_total") == 5100
    assert value(samples, "maxgate_requests_total", method="files", status="206") == 1


async def test_zero_copy_sends_are_counted_by_their_length() -> None:
    """Under granian, FileResponse sends ``http.response.pathsend``: no body bytes pass by."""
    metrics = Metrics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["endpoint"] = serve_link  # what Starlette's router sets for the link route
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"12345")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/somewhere"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/files/1/a/b", "headers": []}
    await MetricsMiddleware(app, metrics)(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert metrics.registry.get_sample_value("maxgate_file_link_bytes_total") == 12345
    assert (
        metrics.registry.get_sample_value(
            "maxgate_requests_total", {"method": "files", "status": "200"}
        )
        == 1
    )


async def test_a_failing_request_is_counted_as_500() -> None:
    metrics = Metrics()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("a bug")

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": []}
    with pytest.raises(RuntimeError):
        await MetricsMiddleware(app, metrics)(scope, receive, send)
    labels = {"method": "unknown", "status": "500"}
    assert metrics.registry.get_sample_value("maxgate_requests_total", labels) == 1


async def test_files_by_state_and_queue_depths(settings: Settings) -> None:
    app = create_app(settings, workers=False)  # no sender: sent messages stay pending
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=settings.base_url
        ) as client,
    ):
        runtime: Runtime = app.state.runtime
        instance, token = await runtime.instances.create(name="Alice")
        account = Account(instance, token)
        ok(await client.post(account.url("uploadFile"), content=b"abc"))
        for text in ("one", "two"):
            body = {"chatId": CONTACT, "message": text}
            ok(await client.post(account.url("sendMessage"), json=body))
        await runtime.sandbox.contact_send(account.id, CONTACT, text="hello", sender_name="")
        samples = await scrape(client)
        assert value(samples, "maxgate_files", state="stored") == 1
        assert value(samples, "maxgate_files", state="remote") == 0
        assert value(samples, "maxgate_files", state="evicted") == 0
        assert value(samples, "maxgate_queue_depth", queue="outbox") == 2
        pending = await runtime.notifications.count(account.id)
        assert pending >= 1  # at least the contact's message
        assert value(samples, "maxgate_queue_depth", queue="notifications") == pending


async def test_a_database_failure_leaves_the_rest_of_the_scrape(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Any:
        raise StoreError("metadata store read failed: OperationalError")

    monkeypatch.setattr(runtime.db, "read", broken)
    samples = await scrape(client)
    assert not label_values(samples, "maxgate_files", "state")
    assert ("maxgate_info", frozenset({("version", metrics_module.__version__)})) in samples


class _FailingUpstream:
    """An upstream whose every operation fails (fetch_file after one chunk)."""

    kind = "failing"

    async def start(self, sink: InboundSink) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self, instance: Instance, message: JournalMessage, body: AsyncIterator[bytes] | None
    ) -> str:
        raise UpstreamError("down")

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        yield b"partial"
        raise UpstreamFileGone("gone")

    async def check_account(self, phone: int) -> str | None:
        raise UpstreamError("down")

    async def reboot(self, instance: Instance) -> None:
        pass

    async def logout(self, instance: Instance) -> None:
        pass

    async def qr(self, instance: Instance) -> bytes | None:
        return None


async def test_upstream_errors_are_counted(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingUpstream(_FailingUpstream())
    with pytest.raises(UpstreamError):
        await counting.check_account(79990000002)
    with pytest.raises(UpstreamError):
        await counting.check_account(79990000002)
    with pytest.raises(UpstreamFileGone):
        async for _chunk in counting.fetch_file(1, None):  # type: ignore[arg-type]
            pass
    with pytest.raises(UpstreamError):
        await counting.send(None, None, None)  # type: ignore[arg-type]
    monkeypatch.setattr(runtime, "upstream", counting)
    samples = await scrape(client)
    name = "maxgate_upstream_errors_total"
    assert value(samples, name, operation="check_account", error="UpstreamError") == 2
    assert value(samples, name, operation="fetch_file", error="UpstreamFileGone") == 1
    assert value(samples, name, operation="send", error="UpstreamError") == 1
    assert value(samples, name, operation="fetch_file", error="UpstreamError") == 0


async def test_the_runtime_counts_its_upstream(runtime: Runtime) -> None:
    assert isinstance(runtime.upstream, CountingUpstream)
    # it counts for every kind: the router that sends each instance's calls to its adapter
    assert runtime.upstream.inner is runtime.upstreams
    assert runtime.upstreams.adapter("sandbox") is runtime.sandbox


async def test_bearer_token_when_configured(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics_token="s3cret-token")
    client = gateway.client
    assert_error(await client.get("/metrics"), 401, "Unauthorized")
    wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
    assert_error(wrong, 401, "Unauthorized")
    assert wrong.headers["www-authenticate"] == "Bearer"
    basic = await client.get("/metrics", headers={"authorization": "Basic s3cret-token"})
    assert_error(basic, 401, "Unauthorized")
    await scrape(client, headers={"authorization": "Bearer s3cret-token"})
    assert "s3cret-token" not in repr(gateway.settings)


async def test_each_app_has_its_own_registry(make_gateway: GatewayFactory) -> None:
    first, second = await make_gateway(), await make_gateway()
    for _ in range(3):
        await first.client.get("/health")
    assert (
        value(await scrape(first.client), "maxgate_requests_total", method="/health", status="200")
        == 3
    )
    assert (
        "maxgate_requests_total",
        frozenset({("method", "/health"), ("status", "200")}),
    ) not in (await scrape(second.client))


async def test_metrics_can_be_turned_off(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics=False)
    assert_error(await gateway.client.get("/metrics"), 404, "Not Found")
    document = ok(await gateway.client.get("/openapi.json"))
    assert "/metrics" not in document["paths"]
