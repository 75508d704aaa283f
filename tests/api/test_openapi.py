"""The OpenAPI document: valid, complete (every served route, every registered method), true to
the Field tables and to the real answers; and the reference page with its packaged assets."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from maxgate.api.methods.sending import SEND_MESSAGE
from maxgate.api.openapi import ASSETS, STATIC, build_document, method_path, openapi_path
from maxgate.api.routing import METHODS, PARTNER_METHODS, MethodSpec, V3Route, partner_endpoint
from maxgate.api.schemas import object_schema
from maxgate.runtime import Runtime
from tests.api._support import CONTACT, MULTIPART_TYPE, multipart, ok, wait_for_message
from tests.conftest import Account

WRONG_TOKEN = "0" * 50


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    """The document as /openapi.json serves it."""
    document: dict[str, Any] = ok(await client.get("/openapi.json"))
    return document


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises OpenAPIValidationError with the path of the first problem


def test_every_route_and_method_has_its_schema_info(app: Starlette) -> None:
    """A method registered without summary, body or answer schema fails here, by name."""
    _document, problems = build_document(app.routes)
    assert problems == [], "\n".join(problems)


def test_the_generator_reports_what_is_missing() -> None:
    async def handler(_call: Any) -> None:
        return None

    bare = MethodSpec("someMethod", frozenset({"POST"}), handler, takes_extra=True)
    routes = [
        Route("/new", handler),
        V3Route(),
    ]
    METHODS["somemethod"] = bare
    try:
        _document, problems = build_document(routes)
    finally:
        del METHODS["somemethod"]
    text = "\n".join(problems)
    assert "route /new is not described" in text
    for missing in ("no docstring", "no answer schema", "declares none", "extra=Param"):
        assert "method someMethod" in text and missing in text, missing


def _operations(item: dict[str, Any]) -> set[str]:
    return {verb.upper() for verb in item}


def test_every_served_route_is_documented(app: Starlette, document: dict[str, Any]) -> None:
    paths = document["paths"]
    served_methods = 0
    for route in app.routes:
        assert isinstance(route, Route), route
        if isinstance(route, V3Route):
            for prefix in V3Route.PREFIXES:
                for spec in METHODS.values():
                    path = method_path(spec, prefix)
                    assert _operations(paths[path]) == set(spec.verbs), path
                    served_methods += 1
        elif route.endpoint is partner_endpoint:
            for spec in PARTNER_METHODS.values():
                assert _operations(paths[method_path(spec)]) == set(spec.verbs), spec.name
        else:
            path = openapi_path(route.path)
            assert path in paths, f"{route.path} is served but not documented"
            documented = _operations(paths[path])
            assert set(route.methods or ()) - {"HEAD"} <= documented, path
    assert served_methods == 2 * len(METHODS)  # each method with and without /v3
    for path in ("/", "/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert path in paths, path
    assert "head" in paths["/files/{instance}/{file_id}/{name}"]


def _fill(path: str, operation: dict[str, Any], account: Account) -> tuple[str, dict[str, str]]:
    """A concrete URL for a documented operation: a real instance with a wrong token."""
    values = {
        "idInstance": str(account.id),
        "apiTokenInstance": WRONG_TOKEN,
        "partnerToken": WRONG_TOKEN,
        "receiptId": "1",
        "instance": str(account.id),
        "file_id": "0123456789abcdef",
        "exp": "1",
        "sig": "x",
    }
    query: dict[str, str] = {}
    for param in operation.get("parameters", []):
        name = param["name"]
        value = param["schema"]["enum"][0] if "enum" in param["schema"] else values.get(name)
        if name == "name" and value is None:
            value = "a.txt"
        if param["in"] == "path":
            assert value is not None, f"no test value for path parameter {name} of {path}"
            path = path.replace("{" + name + "}", value)
        elif param["in"] == "query" and param["required"]:
            assert value is not None, f"no test value for query parameter {name} of {path}"
            query[name] = value
    return path, query


async def test_every_documented_operation_answers(
    client: httpx.AsyncClient, document: dict[str, Any], account: Account
) -> None:
    """No documented path is a 404 or a wrong verb. Methods are called with a wrong token, so
    they answer 401 — which only a known method does (an unknown one is 404 before auth)."""
    for template, item in document["paths"].items():
        for verb, operation in item.items():
            url, query = _fill(template, operation, account)
            response = await client.request(verb.upper(), url, params=query)
            where = f"{verb.upper()} {template}: {response.status_code}"
            assert response.status_code not in (404, 405), where
            if "{apiTokenInstance}" in template or "{partnerToken}" in template:
                assert response.status_code == 401, where
            elif template.startswith(("/files/", "/maxbot/")):
                assert response.status_code == 403, where  # the made-up signature, no secret
            else:
                assert response.status_code == 200, where


async def test_the_document_cites_no_document_outside_the_repository(
    client: httpx.AsyncClient,
) -> None:
    """The reference is read on a served page: no "spec §3" of a contract it cannot show."""
    text = (await client.get("/openapi.json")).text
    assert "§" not in text
    assert not re.search(r"\bspec\b", text, re.IGNORECASE), re.findall(r".{40}\bspec\b.{20}", text)
    assert "(decision" not in text  # the contract's word for its choices, not the reader's
    assert "docs/methods.md in the maxgate repository" in text


def test_request_bodies_are_the_field_tables(document: dict[str, Any]) -> None:
    send_message = document["paths"][method_path(METHODS["sendmessage"])]["post"]
    schema = send_message["requestBody"]["content"]["application/json"]["schema"]
    assert schema == object_schema(SEND_MESSAGE)
    assert schema["required"] == ["chatId", "message"]
    assert schema["properties"]["message"]["maxLength"] == 4000
    assert schema["properties"]["chatId"]["pattern"] == "^(?:-?[0-9]{1,19})$"
    upload = document["paths"][method_path(METHODS["sendfilebyupload"])]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"chatId", "file"} <= set(form["required"])
    raw = document["paths"][method_path(METHODS["uploadfile"])]["post"]
    assert "*/*" in raw["requestBody"]["content"]
    assert "GA-Filename" in {p["name"] for p in raw["parameters"] if p["in"] == "header"}
    last = document["paths"][method_path(METHODS["lastincomingmessages"])]["get"]
    (minutes,) = [p for p in last["parameters"] if p["in"] == "query"]
    assert minutes["name"] == "minutes" and minutes["schema"]["default"] == 1440


def test_errors_are_the_one_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"statusCode", "error", "message"}
    operation = document["paths"][method_path(METHODS["downloadfile"])]["post"]
    for status in ("400", "401", "403", "429", "500"):
        ref = operation["responses"][status]["$ref"]
        response = document["components"]["responses"][ref.rsplit("/", 1)[1]]
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }


def test_unprefixed_paths_mirror_the_v3_ones(document: dict[str, Any]) -> None:
    for spec in METHODS.values():
        v3, bare = method_path(spec, "/v3"), method_path(spec, "")
        assert document["paths"][bare].keys() == document["paths"][v3].keys()
        for verb in spec.verbs:
            assert (
                document["paths"][bare][verb.lower()]["operationId"]
                != (document["paths"][v3][verb.lower()]["operationId"])
            )


async def test_every_answer_matches_its_documented_schema(
    client: httpx.AsyncClient,
    document: dict[str, Any],
    runtime: Runtime,
    account: Account,
    other_account: Account,
) -> None:
    """Call every method once and check its 200 body against the document. A new method
    needs a sample call here: the last assertion names the ones without."""
    partner_token = runtime.settings.partner_token.reveal()
    called: set[str] = set()

    async def call(name: str, *, extra: str = "", **kwargs: Any) -> Any:
        partner = name.lower() in PARTNER_METHODS
        spec = (PARTNER_METHODS if partner else METHODS)[name.lower()]
        (verb,) = spec.verbs
        url = f"/partner/{spec.name}/{partner_token}" if partner else account.url(spec.name)
        body = ok(await client.request(verb, url + extra, **kwargs))
        operation = document["paths"][method_path(spec)][verb.lower()]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(body)]
        assert not errors, f"{spec.name} answered {body!r}, not its schema: {errors}"
        called.add(("partner:" if partner else "") + spec.name)
        return body

    text = (await call("sendMessage", json={"chatId": CONTACT, "message": "hi"}))["idMessage"]
    upload = multipart([("chatId", CONTACT, None, None), ("file", b"abc", "a.txt", "text/plain")])
    headers = {"content-type": MULTIPART_TYPE}
    sent = await call("sendFileByUpload", content=upload, headers=headers)
    uploaded = await call(
        "uploadFile",
        content=b"hello",
        headers={"content-type": "text/plain", "GA-Filename": "b.txt"},
    )
    by_url = {"chatId": CONTACT, "urlFile": uploaded["urlFile"], "fileName": "b.txt"}
    await call("sendFileByUrl", json=by_url)
    await call("downloadFile", json={"chatId": CONTACT, "idMessage": sent["idMessage"]})
    await call("getMessage", json={"chatId": CONTACT, "idMessage": text})
    await call("getChatHistory", json={"chatId": CONTACT, "count": 10})
    await call("lastOutgoingMessages", params={"minutes": 60})
    await call("lastIncomingMessages")
    await call("getChats")
    await call("sendLocation", json={"chatId": CONTACT, "latitude": 55.75, "longitude": 37.61})
    card = {"phoneContact": 79001234568, "firstName": "Artem"}
    await call("sendContact", json={"chatId": CONTACT, "contact": card})
    forward = {"chatId": CONTACT, "chatIdFrom": CONTACT, "messages": [text]}
    await call("forwardMessages", json=forward)
    await call("sendTyping", json={"chatId": CONTACT, "typingTime": 1000})
    await wait_for_message(client, account, CONTACT, text, status="read")
    await call("editMessage", json={"chatId": CONTACT, "idMessage": text, "message": "hello"})
    await call("readChat", json={"chatId": CONTACT})
    await call("getContacts")
    await call("getContactInfo", json={"chatId": CONTACT})
    await call("getAvatar", json={"chatId": CONTACT})
    await call("deleteMessage", json={"chatId": CONTACT, "idMessage": text})
    await call("showMessagesQueue")
    await call("getMessagesCount")
    await call("clearMessagesQueue")

    await client.post(
        other_account.url("sendMessage"), json={"chatId": account.chat_id, "message": "hello"}
    )
    received = await call("receiveNotification", params={"receiveTimeout": 5})
    assert received is not None, "no notification arrived within 5 s"
    await call("deleteNotification", extra=f"/{received['receiptId']}")
    await call("getWebhooksCount")
    await call("clearWebhooksQueue")

    await call("getStateInstance")
    await call("getSettings")
    await call("setSettings", json={"delaySendMessagesMilliseconds": 500})
    await call("getAccountSettings")
    await call("checkAccount", json={"phoneNumber": other_account.instance.phone})
    await call("qr")
    await call("sendAuthorizationPassword", json={"password": "x"})
    await call("reboot")
    await call("logout")

    created = await call("createInstance", json={"name": "Carol"})
    await call("getInstances")
    await call("deleteInstanceAccount", json={"idInstance": created["idInstance"]})
    contact = {"idInstance": account.id, "chatId": CONTACT, "message": "from a contact"}
    await call("sandboxSendMessage", json=contact)

    every = {s.name for s in METHODS.values()} | {
        f"partner:{s.name}" for s in PARTNER_METHODS.values()
    }
    assert every - called == set(), "add a sample call for these methods"


async def test_the_reference_page_uses_packaged_assets_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for name, media_type in ASSETS.items():
        assert f'"docs/assets/{name}"' in page.text, name
        asset = await client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(media_type)
        assert asset.content == (STATIC / name).read_bytes()
    assert (STATIC / "swagger-ui-LICENSE").is_file()
    missing = await client.get("/docs/assets/swagger-ui-LICENSE.map")
    assert missing.status_code == 404
