"""Routing: every request through Starlette's router and middleware, the v3 and link routes as
raw ASGI endpoints (``V3Endpoint``, ``LinkEndpoint``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from maxgate.api import files as files_module
from maxgate.api.files import serve_link
from maxgate.api.routing import METHODS, Call, method, uses_of, v3_endpoint
from maxgate.app import ALL_VERBS, App, create_app
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from tests.api.test_files import upload_file
from tests.conftest import Account


@pytest.fixture
def broken_method() -> Iterator[str]:
    """A registered method whose handler has a bug (a RuntimeError)."""

    async def broken(_call: Call) -> None:
        raise RuntimeError("a bug in a handler")

    method("brokenForTests", "GET")(broken)
    try:
        yield "brokenForTests"
    finally:
        del METHODS["brokenfortests"]


class Exchange:
    """One request through the ASGI app by hand: the body messages to give, the messages sent."""

    def __init__(self, *incoming: Message) -> None:
        self.incoming = list(incoming) or [{"type": "http.request", "body": b""}]
        self.sent: list[Message] = []
        self.reads = 0

    async def receive(self) -> Message:
        self.reads += 1
        return self.incoming.pop(0) if len(self.incoming) > 1 else self.incoming[0]

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def run(self, app: App, scope: dict[str, Any]) -> dict[str, Any]:
        await app(scope, self.receive, self.send)
        return scope


def _scope(verb: str, path: str, *, root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": verb,
        "scheme": "http",
        "path": path,
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


class Seen:
    """A pure ASGI middleware that notes the path of every HTTP request passing through it."""

    def __init__(self, app: Any, paths: list[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


async def test_a_middleware_runs_on_every_route(settings: Settings) -> None:
    """One request path: a middleware a user adds sees a v3 method, a file link and /health."""
    seen: list[str] = []
    app = create_app(settings)
    app.add_middleware(Seen, paths=seen)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        instance, token = await runtime.instances.create(name="Alice")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as c:
            account = Account(instance, token)
            state = await c.get(account.url("getStateInstance"))
            assert state.json() == {"stateInstance": "authorized"}
            link = await upload_file(c, account, b"link bytes")
            assert (await c.get(link)).content == b"link bytes"
            assert (await c.get("/health")).status_code == 200
    assert seen[0] == account.url("getStateInstance")
    assert httpx.URL(link).path in seen
    assert seen[-1] == "/health"


async def test_the_router_serves_the_v3_and_link_routes(
    app: App, client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(account.url("getStateInstance"))
    assert response.status_code == 200
    assert response.json() == {"stateInstance": "authorized"}
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)

    exchange = Exchange()
    scope = await exchange.run(app, _scope("GET", account.url("getStateInstance")))
    assert exchange.sent[0]["status"] == 200
    assert len(exchange.sent) == 2  # a 200 JSON answer: start and one body
    assert scope["endpoint"] is v3_endpoint
    assert scope["path_params"]["method"] == "getStateInstance"
    exchange = Exchange()
    scope = await exchange.run(app, _scope("GET", "/health"))
    assert scope["endpoint"].__name__ == "health"


async def test_v3_answers_in_the_checking_order(app: App, account: Account, settings: Any) -> None:
    """Route, verb, instance and token checks, unknown verbs and CORS preflights (the cases a
    parity test compared between the old fast path and Starlette's routing)."""
    requests = [
        ("GET", account.url("getStateInstance"), None, 200, None),
        ("GET", account.url("GETSETTINGS", v3=False), None, 200, None),
        ("POST", account.url("downloadFile"), {"chatId": "1@c.us"}, 400, None),
        ("POST", account.url("downloadFile"), {"chatId": "10000000", "idMessage": "X"}, 400, None),
        ("GET", account.url("getStateInstance").replace(account.token, "0" * 50), None, 401, None),
        ("GET", account.url("noSuchMethod"), None, 404, None),
        ("GET", account.url("getSettings") + "/extra", None, 404, None),
        ("PUT", account.url("getSettings"), None, 405, "GET"),
        ("TRACE", account.url("getSettings"), None, 405, ", ".join(ALL_VERBS)),  # Starlette's
        ("TRACE", account.url("noSuchMethod"), None, 405, ", ".join(ALL_VERBS)),
        ("GET", "/waInstance12/getSettings/x", None, 403, None),
        ("OPTIONS", account.url("downloadFile"), None, 204, None),  # a CORS preflight
        ("OPTIONS", account.url("getSettings", v3=False), None, 204, None),
        ("OPTIONS", account.url("getSettings").replace(account.token, "0" * 50), None, 204, None),
        ("OPTIONS", account.url("noSuchMethod"), None, 404, None),
        ("OPTIONS", account.url("deleteNotification") + "/7", None, 204, None),
    ]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.base_url
    ) as c:
        for verb, url, body, status, allow in requests:
            response = await c.request(verb, url, json=body)
            assert response.status_code == status, (verb, url, response.text)
            if status >= 400:
                assert response.json()["statusCode"] == status, (verb, url)
            if allow is not None:
                assert sorted(response.headers["allow"].split(", ")) == sorted(allow.split(", ")), (
                    verb,
                    url,
                )
            if verb == "OPTIONS" and status == 204:
                assert "access-control-allow-methods" in response.headers
            elif status != 405 or verb != "TRACE":
                assert response.headers["access-control-allow-origin"] == "*", (verb, url)


async def test_a_bug_is_a_500_in_the_error_shape_and_logged_without_the_token(
    client: httpx.AsyncClient,
    account: Account,
    broken_method: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get(account.url(broken_method))
    assert response.status_code == 500
    assert response.json() == {
        "statusCode": 500,
        "error": "Internal Server Error",
        "message": "Internal Server Error",
    }
    assert "a bug in a handler" in caplog.text  # the traceback is in the log
    assert broken_method in caplog.text
    assert account.token not in caplog.text


async def test_root_path_is_stripped(app: App, account: Account) -> None:
    exchange = Exchange()
    path = "/gateway" + account.url("getStateInstance")
    scope = await exchange.run(app, _scope("GET", path, root_path="/gateway"))
    assert exchange.sent[0]["status"] == 200
    assert exchange.sent[1]["body"] == b'{"stateInstance":"authorized"}'
    assert scope["endpoint"] is v3_endpoint


async def test_a_body_in_pieces_and_a_client_that_leaves(app: App, account: Account) -> None:
    body = b'{"chatId": "10000000", "idMessage": "nope"}'
    exchange = Exchange(
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:30], "more_body": True},
        {"type": "http.request", "body": body[30:], "more_body": False},
    )
    await exchange.run(app, _scope("POST", account.url("downloadFile")))
    assert exchange.sent[0]["status"] == 400
    assert b"File message encrypted url not found" in exchange.sent[1]["body"]

    exchange = Exchange(
        {"type": "http.request", "body": body[:10], "more_body": True}, {"type": "http.disconnect"}
    )
    await exchange.run(app, _scope("POST", account.url("downloadFile")))
    # Answered all the same: granian reports a body it could not read (malformed chunked
    # framing) as a disconnect too, and that client still listens.
    _assert_bad_request(exchange)
    assert app.state.metrics is not None
    assert app.state.metrics._series[("downloadFile", 499)].count == 1


def _assert_bad_request(exchange: Exchange) -> None:
    assert exchange.sent[0]["status"] == 400
    assert json.loads(exchange.sent[1]["body"]) == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Bad Request",
    }


async def test_a_client_leaving_mid_upload_is_answered_too(app: App, account: Account) -> None:
    exchange = Exchange(
        {"type": "http.request", "body": b"x" * 100, "more_body": True}, {"type": "http.disconnect"}
    )
    await exchange.run(app, _scope("POST", account.url("uploadFile")))  # a streamed body
    _assert_bad_request(exchange)
    assert app.state.metrics is not None
    assert app.state.metrics._series[("uploadFile", 499)].count == 1


async def test_an_answer_nobody_takes_is_no_error(app: App, account: Account) -> None:
    class Closed(Exchange):
        async def send(self, message: Message) -> None:
            raise OSError("the connection is closed")  # what ASGI servers may raise

    exchange = Closed(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    await exchange.run(app, _scope("POST", account.url("sendMessage")))
    assert app.state.metrics is not None
    assert app.state.metrics._series[("sendMessage", 499)].count == 1


async def test_json_body_limit_while_reading(app: App, account: Account, runtime: Runtime) -> None:
    chunk = b" " * (runtime.settings.max_json_body // 2 + 1)
    exchange = Exchange({"type": "http.request", "body": chunk, "more_body": True})  # endless
    await exchange.run(app, _scope("POST", account.url("downloadFile")))
    assert exchange.sent[0]["status"] == 413
    assert exchange.reads == 2  # refused at the chunk that crossed the limit


async def test_file_links_through_the_router(
    app: App, client: httpx.AsyncClient, account: Account
) -> None:
    link = await upload_file(client, account, b"link bytes")
    url = httpx.URL(link)
    exchange = Exchange()
    scope = _scope("GET", url.path)
    scope["query_string"] = url.query
    await exchange.run(app, scope)
    assert exchange.sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in exchange.sent[1:]) == b"link bytes"
    assert scope["endpoint"] is serve_link
    assert scope["path_params"]["name"] == "data.bin"

    head = await client.head(link)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "10"
    post = await client.post(link)  # not a link verb: the router's 405
    assert post.status_code == 405
    assert post.json()["error"] == "Method Not Allowed"


async def test_a_bug_in_the_link_route_is_a_500_and_logged(
    client: httpx.AsyncClient,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = await upload_file(client, account, b"link bytes")

    async def broken(_request: Any) -> Any:
        raise RuntimeError("a bug in the link route")

    monkeypatch.setattr(files_module, "serve_file", broken)
    with caplog.at_level(logging.ERROR):
        response = await client.get(link)
    assert response.status_code == 500
    assert response.json()["message"] == "Internal Server Error"
    assert "a bug in the link route" in caplog.text
    assert httpx.URL(link).params["sig"] not in caplog.text


async def test_metrics_keep_the_label_when_sending_fails(app: App, account: Account) -> None:
    class Gone(Exchange):
        async def send(self, message: Message) -> None:
            await super().send(message)
            if message["type"] == "http.response.body":
                raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        await Gone().run(app, _scope("GET", account.url("getStateInstance")))
    assert app.state.metrics is not None
    assert app.state.metrics._series[("getStateInstance", 200)].count == 1  # the status it sent


async def test_a_client_leaving_is_499_on_starlettes_routes_too(app: App) -> None:
    partner = app.state.runtime.settings.partner_token.reveal()
    exchange = Exchange(
        {"type": "http.request", "body": b'{"na', "more_body": True}, {"type": "http.disconnect"}
    )
    with pytest.raises(ClientDisconnect):
        await exchange.run(app, _scope("POST", f"/partner/createInstance/{partner}"))
    _assert_bad_request(exchange)  # Starlette's error middleware answers it (fault_error)
    assert app.state.metrics is not None
    assert app.state.metrics._series[("partner:createInstance", 499)].count == 1


def test_a_handler_names_the_services_it_takes() -> None:
    async def handler(call: Call, *, journal: Any, signer: Any) -> None:
        return None

    assert uses_of(handler) == ("journal", "signer")
    spec = METHODS["downloadfile"]
    assert set(spec.uses) == {"journal", "files", "signer", "settings"}


def test_a_service_that_does_not_exist_is_refused_at_registration() -> None:
    async def handler(call: Call, *, runtime: Any) -> None:
        return None

    with pytest.raises(TypeError, match=r"takes \['runtime'\]: no such service"):
        method("needsTheRuntime", "GET")(handler)
    assert "needstheruntime" not in METHODS


async def test_a_handler_gets_exactly_what_it_names(
    client: httpx.AsyncClient, account: Account, runtime: Runtime
) -> None:
    handed: dict[str, Any] = {}

    async def handler(call: Call, *, journal: Any, settings: Any) -> dict[str, bool]:
        handed.update(journal=journal, settings=settings)
        return {"ok": True}

    method("handedForTests", "GET")(handler)
    try:
        response = await client.get(account.url("handedForTests"))
    finally:
        del METHODS["handedfortests"]
    assert response.json() == {"ok": True}
    assert handed == {"journal": runtime.journal, "settings": runtime.settings}
