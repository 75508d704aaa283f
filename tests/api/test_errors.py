"""The error shape of every route and the common errors of spec §1.4, through real requests."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from maxgate.api.routing import METHODS, PARTNER_METHODS, MethodSpec
from maxgate.runtime import Runtime
from maxgate.store import tables as t
from tests.api._support import (
    CONTACT,
    MB,
    MULTIPART_TYPE,
    assert_error,
    chunks,
    committed_blobs,
    count_rows,
    file_rows,
    invalid,
    multipart,
    ok,
    send_text,
    temp_objects,
    wait_for_message,
)
from tests.api.conftest import GatewayFactory
from tests.conftest import Account

UNKNOWN_INSTANCE = 3109999999
WRONG_TOKEN = "0" * 50
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# A body each POST method refuses with a 400; every other POST method gets BAD_BODY.
BAD_BODY = b"[1, 2]"
BAD_BODIES = {"uploadFile": b""}  # any bytes are a file; no bytes are not
# GET methods that take a query parameter, with a value they refuse.
BAD_QUERIES = {
    "lastIncomingMessages": {"minutes": "abc"},
    "lastOutgoingMessages": {"minutes": "abc"},
    "receiveNotification": {"receiveTimeout": "abc"},
}


def _path(spec: MethodSpec, instance_id: int, token: str) -> str:
    path = f"/v3/waInstance{instance_id}/{spec.name}/{token}"
    return path + "/1" if spec.takes_extra else path


def _verb(spec: MethodSpec) -> str:
    return sorted(spec.verbs)[0]


def _wrong_verb(spec: MethodSpec) -> str:
    return next(v for v in VERBS if v not in spec.verbs)


def _bad_body(spec: MethodSpec) -> bytes:
    return BAD_BODIES.get(spec.name, BAD_BODY)


async def test_error_shape_on_every_route(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    """Every registered method, with every way to get it wrong, answers the one error shape."""
    assert "sendmessage" in METHODS and "createinstance" in PARTNER_METHODS
    await runtime.instances.delete(other_account.id)
    for spec in sorted(METHODS.values(), key=lambda s: s.name):
        verb = _verb(spec)
        wrong = await client.request(_wrong_verb(spec), _path(spec, account.id, account.token))
        assert_error(wrong, 405, "Method Not Allowed")
        assert verb in wrong.headers["allow"]
        unknown = await client.request(verb, _path(spec, UNKNOWN_INSTANCE, account.token))
        assert_error(unknown, 403, "Forbidden")
        bad_token = await client.request(verb, _path(spec, account.id, WRONG_TOKEN))
        assert_error(bad_token, 401, "Unauthorized")
        deleted = await client.request(verb, _path(spec, other_account.id, other_account.token))
        assert_error(deleted, 400, "Instance is deleted")
        if "POST" in spec.verbs:
            bad = await client.post(
                _path(spec, account.id, account.token),
                content=_bad_body(spec),
                headers={"content-type": "application/json"},
            )
            assert_error(bad, 400)
        if spec.name in BAD_QUERIES:
            bad = await client.request(
                verb, _path(spec, account.id, account.token), params=BAD_QUERIES[spec.name]
            )
            assert_error(bad, 400)

    partner_token = runtime.settings.partner_token.reveal()
    for spec in sorted(PARTNER_METHODS.values(), key=lambda s: s.name):
        path = f"/partner/{spec.name}/{partner_token}"
        assert_error(await client.request(_wrong_verb(spec), path), 405, "Method Not Allowed")
        bad_token = await client.request(_verb(spec), f"/partner/{spec.name}/{WRONG_TOKEN}")
        assert_error(bad_token, 401, "Unauthorized")
        if "POST" in spec.verbs:
            assert_error(await client.post(path, content=_bad_body(spec)), 400)

    assert_error(await client.get(account.url("noSuchMethod")), 404, "Not Found")
    assert_error(await client.get(f"/partner/noSuchMethod/{partner_token}"), 404, "Not Found")
    assert_error(await client.get("/no/such/path"), 404, "Not Found")
    assert_error(await client.post("/files/1/abc/a.txt?exp=1&sig=x"), 405, "Method Not Allowed")


# --- spec §1.4, one error at a time -----------------------------------------------------------


async def test_required_field(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(account.url("sendMessage"), json={"chatId": CONTACT, "x": 1})
    assert_error(response, 400, invalid("'message' is required"))
    response = await client.post(account.url("sendMessage"), json={"message": "hi", "x": 1})
    assert_error(response, 400, invalid("'chatId' is required"))


@pytest.mark.parametrize(
    ("method", "body", "details"),
    [
        ("sendMessage", {"chatId": 10000777, "message": "hi"}, "'chatId' must be a string"),
        ("sendMessage", {"chatId": CONTACT, "message": ["hi"]}, "'message' must be a string"),
        ("getChatHistory", {"chatId": CONTACT, "count": "5"}, "'count' must be a number"),
        ("checkAccount", {"phoneNumber": "79990000001"}, "'phoneNumber' must be a number"),
        (
            "sendMessage",
            {"chatId": CONTACT, "message": "hi", "linkPreview": "yes"},
            "'linkPreview' must be a boolean",
        ),
    ],
)
async def test_wrong_type(
    client: httpx.AsyncClient, account: Account, method: str, body: object, details: str
) -> None:
    assert_error(await client.post(account.url(method), json=body), 400, invalid(details))


@pytest.mark.parametrize(
    ("method", "body", "keys"),
    [
        ("sendMessage", {}, 2),
        ("sendMessage", {"chatId": CONTACT}, 2),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "https://example.com/a.pdf"}, 3),
        ("getMessage", {"chatId": CONTACT}, 2),
        ("getChatHistory", {}, 1),
        ("checkAccount", {}, 1),
        ("setSettings", {}, 1),
    ],
)
async def test_too_few_keys(
    client: httpx.AsyncClient, account: Account, method: str, body: object, keys: int
) -> None:
    response = await client.post(account.url(method), json=body)
    assert_error(response, 400, invalid(f"'value' must have at least {keys} keys"))


@pytest.mark.parametrize("raw", [b"[1,2]", b"5", b"null", b"true", b'"hello"', b'"[1]"'])
async def test_body_not_an_object(client: httpx.AsyncClient, account: Account, raw: bytes) -> None:
    response = await client.post(account.url("sendMessage"), content=raw)
    assert_error(response, 400, invalid("'value' must be of type object"))


async def test_pattern(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(account.url("sendMessage"), json={"chatId": "abc", "message": "x"})
    assert_error(
        response, 400, invalid("'chatId' with value 'abc' fails to match the required pattern")
    )
    response = await client.post(account.url("getChatHistory"), json={"chatId": "79990000001@c.us"})
    assert_error(
        response,
        400,
        invalid("'chatId' with value '79990000001@c.us' fails to match the required pattern"),
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{chatId: 1}", "Unexpected token c in JSON at position 1"),
        (b'{"chatId": "1",}', "Unexpected token } in JSON at position 15"),
        (b"{'chatId': '1'}", "Unexpected token ' in JSON at position 1"),
        (b"hello", "Unexpected token h in JSON at position 0"),
        (b'{"chatId": ', "Unexpected end of JSON input"),
    ],
)
async def test_malformed_json(
    client: httpx.AsyncClient, account: Account, raw: bytes, message: str
) -> None:
    response = await client.post(
        account.url("sendMessage"), content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, message)


async def test_unusable_request_is_bad_request(client: httpx.AsyncClient, account: Account) -> None:
    """A JSON body for the multipart method, or bytes that are not UTF-8: plain Bad Request."""
    response = await client.post(
        account.url("sendFileByUpload"), json={"chatId": CONTACT, "file": "x"}
    )
    assert_error(response, 400, "Bad Request")
    for raw in (b"\xff{}", b'{"chatId": "1"}\xff'):
        response = await client.post(account.url("sendMessage"), content=raw)
        assert_error(response, 400, "Bad Request")


@pytest.mark.parametrize("raw", [b'{"chatId": "\xff", "message": "x"}', b'{"\xff": 1, "x": 2}'])
async def test_invalid_utf8_in_a_string_is_not_a_500(
    client: httpx.AsyncClient, account: Account, raw: bytes
) -> None:
    assert_error(await client.post(account.url("sendMessage"), content=raw), 400, "Bad Request")


@pytest.mark.parametrize("depth", [5000, 100_000])
async def test_deeply_nested_json_is_not_a_500(
    client: httpx.AsyncClient, account: Account, depth: int
) -> None:
    raw = b"[" * depth + b"]" * depth
    for body in (raw, json.dumps(raw.decode()).encode()):  # plain, and double-encoded
        response = await client.post(account.url("sendMessage"), content=body)
        assert_error(response, 400)


async def test_auth_errors(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.get(f"/v3/waInstance{account.id}/getStateInstance/{WRONG_TOKEN}")
    assert_error(response, 401, "Unauthorized")
    response = await client.get(
        f"/v3/waInstance{UNKNOWN_INSTANCE}/getStateInstance/{account.token}"
    )
    assert_error(response, 403, "Forbidden")
    for bad_id in ("123", "31000000011", "abcdefghij"):
        response = await client.get(f"/v3/waInstance{bad_id}/getStateInstance/{account.token}")
        assert_error(response, 403, "Forbidden")
    assert account.token not in response.text


async def test_not_found_and_wrong_verb(client: httpx.AsyncClient, account: Account) -> None:
    assert_error(await client.post(account.url("sendSticker")), 404, "Not Found")
    response = await client.get(account.url("sendMessage"))
    assert_error(response, 405, "Method Not Allowed")
    assert response.headers["allow"] == "POST"
    assert_error(await client.post(account.url("getStateInstance")), 405, "Method Not Allowed")
    # {extra} exists only for methods that take it.
    assert_error(await client.get(account.url("getStateInstance") + "/1"), 404, "Not Found")


async def test_instance_not_authorized(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    await runtime.instances.set_state(account.id, "notAuthorized")
    response = await client.post(
        account.url("sendMessage"), json={"chatId": CONTACT, "message": "hi"}
    )
    assert_error(response, 400, "instance is starting or not authorized")
    state = ok(await client.get(account.url("getStateInstance")))
    assert state == {"stateInstance": "notAuthorized"}


async def test_file_over_the_limit(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(max_file_size="1MB")
    account = await gateway.account()
    client = gateway.client
    message = "File exceeded max upload size. Size: 2mb Limit: 1mb"
    # Announced by Content-Length: refused before reading.
    response = await client.post(account.url("uploadFile"), content=b"x" * (2 * MB))
    assert_error(response, 413, message)
    # Streamed without a length: refused while streaming (at 1 MB + one 64 KB chunk).
    response = await client.post(account.url("uploadFile"), content=chunks(b"x" * (3 * MB)))
    assert_error(response, 413, message)
    body = multipart([("chatId", CONTACT, None, None), ("file", b"x" * (MB + 1), "a.bin", None)])
    response = await client.post(
        account.url("sendFileByUpload"),
        content=chunks(body),
        headers={"content-type": MULTIPART_TYPE},
    )
    assert_error(response, 413, message)
    # Exactly at the limit is fine.
    response = await client.post(account.url("uploadFile"), content=b"x" * MB)
    assert ok(response)["urlFile"]
    assert await count_rows(gateway.runtime, t.files) == 1
    assert len(committed_blobs(gateway.runtime)) == 1
    assert temp_objects(gateway.runtime) == []


async def test_json_body_over_the_limit(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(max_json_body="1kb")
    account = await gateway.account()
    big = json.dumps({"chatId": CONTACT, "message": "x" * 2000}).encode()
    response = await gateway.client.post(account.url("sendMessage"), content=big)
    assert_error(response, 413, "Payload Too Large")
    response = await gateway.client.post(account.url("sendMessage"), content=chunks(big, 100))
    assert_error(response, 413, "Payload Too Large")
    small = json.dumps({"chatId": CONTACT, "message": "x" * 500}).encode()
    assert ok(await gateway.client.post(account.url("sendMessage"), content=small))


# --- checking order: route → verb → instance → token → body ----------------------------------


async def test_checking_order(
    client: httpx.AsyncClient, runtime: Runtime, account: Account, other_account: Account
) -> None:
    bad_token = f"/v3/waInstance{account.id}/sendMessage/{WRONG_TOKEN}"
    assert_error(await client.post(bad_token, content=b"{oops"), 401, "Unauthorized")
    unknown = f"/v3/waInstance{UNKNOWN_INSTANCE}/sendMessage/{WRONG_TOKEN}"
    assert_error(await client.get(unknown), 405, "Method Not Allowed")
    assert_error(await client.post(unknown, content=b"{oops"), 403, "Forbidden")
    unknown_method = f"/v3/waInstance{UNKNOWN_INSTANCE}/noSuchMethod/{WRONG_TOKEN}"
    assert_error(await client.put(unknown_method), 404, "Not Found")
    await runtime.instances.delete(other_account.id)
    deleted = other_account.url("sendMessage")
    assert_error(await client.post(deleted, content=b"{oops"), 400, "Instance is deleted")
    deleted_bad_token = f"/v3/waInstance{other_account.id}/sendMessage/{WRONG_TOKEN}"
    assert_error(await client.post(deleted_bad_token), 401, "Unauthorized")
    # The JSON body limit is a body check too: it comes after the token.
    huge = b"x" * (runtime.settings.max_json_body + 1)
    assert_error(await client.post(bad_token, content=huge), 401, "Unauthorized")


# --- bad input never changes state ------------------------------------------------------------


async def test_bad_input_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    group = "-10000000000001"
    json_calls = [
        ("sendMessage", {"chatId": CONTACT}),
        ("sendMessage", {"chatId": CONTACT, "message": ""}),
        ("sendMessage", {"chatId": CONTACT, "message": "x" * 4001}),
        ("sendMessage", {"chatId": group, "message": "hi", "linkPreview": "no"}),
        ("sendMessage", {"chatId": CONTACT, "message": "hi", "typingTime": -1}),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "https://example.com/a.pdf"}),
        ("sendFileByUrl", {"chatId": group, "urlFile": 5, "fileName": "a.pdf"}),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "http://127.0.0.1:1/a", "fileName": "a"}),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "ftp://example.com/a", "fileName": "a"}),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "not a url", "fileName": "a.pdf"}),
        ("sendFileByUrl", {"chatId": CONTACT, "urlFile": "https://example.com/", "fileName": ".."}),
    ]
    for method, body in json_calls:
        assert_error(await client.post(account.url(method), json=body), 400)
    uploads = [
        [("file", b"data", "a.txt", "text/plain")],  # no chatId
        [("chatId", "abc", None, None), ("file", b"data", "a.txt", None)],
        [("chatId", group, None, None)],  # no file
        [("chatId", CONTACT, None, None), ("file", b"1", "a", None), ("file", b"2", "b", None)],
        [
            ("file", b"data", "a.txt", None),
            ("chatId", CONTACT, None, None),
            ("fileName", "x" * 300, None, None),
        ],
    ]
    for parts in uploads:
        response = await client.post(
            account.url("sendFileByUpload"),
            content=multipart(parts),
            headers={"content-type": MULTIPART_TYPE},
        )
        assert_error(response, 400)
    truncated = multipart([("chatId", CONTACT, None, None), ("file", b"data", "a.txt", None)])
    response = await client.post(
        account.url("sendFileByUpload"),
        content=truncated[:-10],
        headers={"content-type": MULTIPART_TYPE},
    )
    assert_error(response, 400, "Bad Request")
    assert_error(await client.post(account.url("uploadFile"), content=b""), 400)

    for chat_id in (CONTACT, group):
        history = await client.post(account.url("getChatHistory"), json={"chatId": chat_id})
        assert ok(history) == []
    assert ok(await client.get(account.url("getMessagesCount"))) == {"count": 0}
    assert ok(await client.get(account.url("getChats"))) == []
    assert ok(await client.get(account.url("lastOutgoingMessages"))) == []
    assert await file_rows(runtime) == 0
    assert await count_rows(runtime, t.messages) == 0
    assert await count_rows(runtime, t.outbox) == 0


async def test_bad_multipart_field_is_refused(client: httpx.AsyncClient, account: Account) -> None:
    """A field after the file is checked like one before it (the body is read first)."""
    body = multipart([("file", b"data", "a.txt", None), ("chatId", "abc", None, None)])
    response = await client.post(
        account.url("sendFileByUpload"), content=body, headers={"content-type": MULTIPART_TYPE}
    )
    assert_error(
        response, 400, invalid("'chatId' with value 'abc' fails to match the required pattern")
    )


async def test_empty_upload_leaves_no_blob(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    assert_error(await client.post(account.url("uploadFile"), content=b""), 400)
    assert committed_blobs(runtime) == []


async def test_refused_upload_leaves_no_blob(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    body = multipart([("chatId", "abc", None, None), ("file", b"data" * 1000, "a.txt", None)])
    response = await client.post(
        account.url("sendFileByUpload"), content=body, headers={"content-type": MULTIPART_TYPE}
    )
    assert_error(response, 400)
    assert committed_blobs(runtime) == []
    assert temp_objects(runtime) == []


async def test_unparsable_url_is_not_a_500(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        account.url("sendFileByUrl"),
        json={"chatId": CONTACT, "urlFile": "http://[::1/a.pdf", "fileName": "a.pdf"},
    )
    assert_error(response, 400)


# --- request forms that must work ---------------------------------------------------------------


async def test_both_path_forms_and_any_case(client: httpx.AsyncClient, account: Account) -> None:
    body = {"chatId": CONTACT, "message": "hi"}
    assert ok(await client.get(account.url("getStateInstance", v3=False))) == {
        "stateInstance": "authorized"
    }
    assert "idMessage" in ok(await client.post(account.url("sendMessage", v3=False), json=body))
    for name in ("SendMessage", "SENDMESSAGE", "sendmessage"):
        assert "idMessage" in ok(await client.post(account.url(name), json=body))
        assert "idMessage" in ok(await client.post(account.url(name, v3=False), json=body))
    assert ok(await client.get(account.url("GETSTATEINSTANCE")))["stateInstance"] == "authorized"
    # Errors are the same on both forms.
    assert_error(await client.get(account.url("SENDMESSAGE", v3=False)), 405, "Method Not Allowed")


async def test_double_encoded_body_is_accepted(client: httpx.AsyncClient, account: Account) -> None:
    """The seed's Python sample: ``requests.post(url, json=json.dumps({...}))``."""
    payload = json.dumps({"chatId": CONTACT, "message": "from the seed sample"})
    response = await client.post(account.url("sendMessage"), json=payload)
    id_message = ok(response)["idMessage"]
    item = ok(
        await client.post(
            account.url("getMessage"),
            json=json.dumps({"chatId": CONTACT, "idMessage": id_message}),
        )
    )
    assert item["textMessage"] == "from the seed sample"


async def test_sloppy_content_type_and_extra_keys(
    client: httpx.AsyncClient, account: Account
) -> None:
    raw = json.dumps({"chatId": CONTACT, "message": "hi", "archiveChat": True, "x": [1]})
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {},
    ):
        response = await client.post(account.url("sendMessage"), content=raw, headers=headers)
        assert "idMessage" in ok(response)


async def test_tokens_never_in_error_bodies_or_logs(
    client: httpx.AsyncClient,
    runtime: Runtime,
    account: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = (account.token, WRONG_TOKEN, runtime.settings.partner_token.reveal())
    answers = [
        await client.get(f"/v3/waInstance{account.id}/getStateInstance/{WRONG_TOKEN}"),
        await client.post(account.url("sendMessage"), content=b"{oops"),
        await client.get(f"/partner/getInstances/{WRONG_TOKEN}"),
        await client.get(account.url("noSuchMethod")),
    ]
    for response in answers:
        assert response.status_code >= 400
        assert not any(secret in response.text for secret in secrets)
    id_message = await send_text(client, account, CONTACT, "logged?")
    await wait_for_message(client, account, CONTACT, id_message, status="read")
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("maxgate", "starlette")]
    for record in ours:
        assert not any(secret in record.getMessage() for secret in secrets), record.getMessage()
