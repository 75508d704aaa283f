"""The exception tree: each status maps to its class, with the status and the server's message;
the token never shows in a message, a repr or a log line."""

from __future__ import annotations

import dataclasses
import io
import logging
import socket
from pathlib import Path

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from maxgate.app import create_app
from maxgate.client import (
    ApiStatusError,
    AsyncClient,
    BadRequestError,
    Client,
    DecodeError,
    ForbiddenError,
    GoneError,
    MaxgateClientError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TransportError,
    UnauthorizedError,
)
from maxgate.settings import load_settings
from tests.client.conftest import Api, ApiFactory
from tests.conftest import Account

TOKEN = "ab" * 25
CREDENTIALS = {"api_url": "http://gateway.test", "id_instance": 3100000001, "api_token": TOKEN}


def answering(status: int, body: bytes, headers: dict[str, str] | None = None) -> Client:
    """A sync client whose every request gets this answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return Client(transport=httpx.MockTransport(handler), retries=0, **CREDENTIALS)


def shaped(status: int, message: str) -> bytes:
    return msgspec.json.encode({"statusCode": status, "error": "x", "message": message})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (405, ApiStatusError),
        (410, GoneError),
        (413, PayloadTooLargeError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type[ApiStatusError]) -> None:
    with (
        answering(status, shaped(status, f"the text of {status}")) as client,
        pytest.raises(cls) as caught,
    ):
        client.get_state_instance()
    error = caught.value
    assert type(error) is cls and isinstance(error, MaxgateClientError)
    assert (error.status_code, error.message, error.method) == (
        status,
        f"the text of {status}",
        "getStateInstance",
    )
    assert str(error) == f"getStateInstance: {status} the text of {status}"


def test_rate_limit_error_carries_retry_after() -> None:
    with (
        answering(429, shaped(429, "Too Many Requests"), {"Retry-After": "7"}) as client,
        pytest.raises(RateLimitError) as caught,
    ):
        client.get_settings()
    assert caught.value.retry_after == 7.0


def test_an_error_body_that_is_not_json_keeps_its_first_line() -> None:
    with (
        answering(502, b"<html>upstream down</html>\nmore") as client,
        pytest.raises(ServerError) as caught,
    ):
        client.get_chats()
    assert (caught.value.status_code, caught.value.message) == (502, "<html>upstream down</html>")
    with answering(500, b"") as client, pytest.raises(ServerError, match="HTTP 500"):
        client.get_chats()


def test_a_200_that_is_not_the_promised_shape_is_a_decode_error() -> None:
    with answering(200, b'{"stateInstance": 5}') as client, pytest.raises(DecodeError):
        client.get_state_instance()
    with answering(200, b"not json") as client, pytest.raises(DecodeError, match="not JSON"):
        client.get_state_instance()


def test_the_token_is_scrubbed_from_messages_that_echo_the_url() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=shaped(400, f"bad path {request.url}"))

    with (
        Client(transport=httpx.MockTransport(handler), **CREDENTIALS) as client,
        pytest.raises(BadRequestError) as caught,
    ):
        client.send_message("1", "x")
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert "/waInstance3100000001/sendMessage/***" in caught.value.message


def test_transport_errors_are_wrapped_without_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    with (
        Client(transport=httpx.MockTransport(handler), **CREDENTIALS) as client,
        pytest.raises(TransportError) as caught,
    ):
        client.get_chats()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert TOKEN not in str(caught.value)
    assert str(caught.value).startswith("getChats: cannot reach http://gateway.test/")


def test_a_refused_connection_is_a_transport_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        options = {**CREDENTIALS, "api_url": f"http://127.0.0.1:{port}"}
        with Client(**options) as client, pytest.raises(TransportError) as caught:
            client.get_state_instance()
    assert TOKEN not in str(caught.value)


def test_reprs_and_logs_never_show_the_token(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"stateInstance": "authorized"})

    client = Client(transport=httpx.MockTransport(handler), **CREDENTIALS)
    aclient = AsyncClient(transport=httpx.MockTransport(handler), **CREDENTIALS)
    assert TOKEN not in repr(client) and TOKEN not in repr(aclient)
    assert "3100000001" in repr(client)
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        client.get_state_instance()
    client.close()
    assert "waInstance3100000001/getStateInstance/***" in caplog.text
    assert TOKEN not in caplog.text


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="api_url"):
        Client(api_url="gateway.test", id_instance=1, api_token=TOKEN)
    with pytest.raises(ValueError, match="id_instance"):
        Client(api_url="http://g", id_instance="31x", api_token=TOKEN)
    with pytest.raises(ValueError, match="api_token") as caught:
        Client(api_url="http://g", id_instance=1, api_token="a/b")
    assert "a/b" not in str(caught.value)
    with pytest.raises(ValueError, match="retries"):
        Client(api_url="http://g", id_instance=1, api_token=TOKEN, retries=-1)


# --- the same classes for the real app's answers ---------------------------------------------


async def test_validation_failures_carry_the_servers_text(api: Api) -> None:
    with pytest.raises(BadRequestError) as caught:
        await api.send_message("abc", "hi")
    assert caught.value.status_code == 400
    assert caught.value.message == (
        "Validation failed. Details: 'chatId' with value 'abc' fails to match the required pattern"
    )
    with pytest.raises(BadRequestError) as caught:
        await api.download_file_link("20000001", "2712345112345")
    assert caught.value.message == (
        "File message encrypted url not found by chatId 20000001 and idMessage 2712345112345"
    )
    with pytest.raises(BadRequestError, match="Message not found"):
        await api.get_message("20000001", "1")


async def test_wrong_token_and_unknown_instance(make_api: ApiFactory, account: Account) -> None:
    wrong = Account(account.instance, "0" * 50)
    with pytest.raises(UnauthorizedError) as caught:
        await make_api(wrong).get_state_instance()
    assert (caught.value.status_code, caught.value.message) == (401, "Unauthorized")
    assert "0" * 50 not in str(caught.value)

    unknown = Account(dataclasses.replace(account.instance, id=3199999999), account.token)
    with pytest.raises(ForbiddenError) as caught:
        await make_api(unknown).get_settings()
    assert (caught.value.status_code, caught.value.message) == (403, "Forbidden")


async def test_a_file_over_the_limit_is_payload_too_large(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"data_dir": str(tmp_path / "d"), "rate_limits": False, "max_file_size": "1MB"},
        environ={},
    )
    app: Starlette = create_app(settings)
    async with app.router.lifespan_context(app):
        instance, token = await app.state.runtime.instances.create(name="x")
        async with AsyncClient(
            api_url=settings.base_url,
            id_instance=instance.id,
            api_token=token,
            transport=httpx.ASGITransport(app=app),
        ) as client:
            with pytest.raises(PayloadTooLargeError) as caught:
                await client.upload_file(io.BytesIO(b"x" * (2 * 1024 * 1024)), file_name="a.bin")
    assert caught.value.status_code == 413
    assert caught.value.message == "File exceeded max upload size. Size: 2mb Limit: 1mb"
