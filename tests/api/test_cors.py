"""CORS: the ``OPTIONS`` preflight of every method, and the header that lets pages read answers."""

from __future__ import annotations

import httpx
import pytest

from maxgate.api.routing import METHODS, PARTNER_METHODS
from maxgate.runtime import Runtime
from tests.api._support import assert_error, ok
from tests.conftest import Account

WRONG_TOKEN = "0" * 50
PREFLIGHT = {"Origin": "https://crm.example", "Access-Control-Request-Method": "POST"}


def assert_preflight(response: httpx.Response, methods: str, headers: str = "Content-Type") -> None:
    """A 204 with the CORS preflight headers and no body."""
    where = f"OPTIONS {response.request.url.path}"
    assert response.status_code == 204, f"{where}: {response.status_code} {response.text}"
    assert response.content == b"", where
    assert response.headers["access-control-allow-origin"] == "*", where
    assert response.headers["access-control-allow-methods"] == methods, where
    assert response.headers["allow"] == methods, where
    assert response.headers["access-control-allow-headers"] == headers, where
    assert response.headers["access-control-max-age"] == "86400", where
    assert "content-type" not in response.headers, where


async def test_options_on_a_method_is_a_preflight_in_both_url_forms(
    client: httpx.AsyncClient, account: Account
) -> None:
    for v3 in (True, False):
        response = await client.options(account.url("sendMessage", v3=v3), headers=PREFLIGHT)
        assert_preflight(response, "POST, OPTIONS")
        response = await client.options(account.url("GETSETTINGS", v3=v3), headers=PREFLIGHT)
        assert_preflight(response, "GET, OPTIONS")
    delete = await client.options(account.url("deleteNotification") + "/1", headers=PREFLIGHT)
    assert_preflight(delete, "DELETE, OPTIONS")


async def test_every_method_answers_its_preflight(
    client: httpx.AsyncClient, account: Account, runtime: Runtime
) -> None:
    partner = runtime.settings.partner_token.reveal()
    for spec in METHODS.values():
        url = account.url(spec.name) + ("/1" if spec.takes_extra else "")
        (verb,) = spec.verbs
        assert_preflight(await client.options(url), f"{verb}, OPTIONS")
    for spec in PARTNER_METHODS.values():
        (verb,) = spec.verbs
        response = await client.options(f"/partner/{spec.name}/{partner}")
        assert_preflight(response, f"{verb}, OPTIONS")


async def test_a_preflight_checks_no_credentials(
    client: httpx.AsyncClient, account: Account
) -> None:
    """A preflight carries none: a wrong token, an unknown instance or a wrong partner token
    still get the 204; the real request then gets its 401 or 403."""
    wrong = account.url("sendMessage").replace(account.token, WRONG_TOKEN)
    assert_preflight(await client.options(wrong, headers=PREFLIGHT), "POST, OPTIONS")
    unknown = f"/v3/waInstance3199999999/sendMessage/{WRONG_TOKEN}"
    assert_preflight(await client.options(unknown, headers=PREFLIGHT), "POST, OPTIONS")
    partner = f"/partner/createInstance/{WRONG_TOKEN}"
    assert_preflight(await client.options(partner, headers=PREFLIGHT), "POST, OPTIONS")
    assert_error(await client.post(wrong, json={}), 401, "Unauthorized")
    assert_error(await client.post(unknown, json={}), 403, "Forbidden")


async def test_the_preflight_allows_the_headers_asked_for(
    client: httpx.AsyncClient, account: Account
) -> None:
    headers = {**PREFLIGHT, "Access-Control-Request-Headers": "content-type, ga-filename"}
    response = await client.options(account.url("uploadFile"), headers=headers)
    assert_preflight(response, "POST, OPTIONS", "content-type, ga-filename")
    assert "Access-Control-Request-Headers" in response.headers["vary"]


@pytest.mark.parametrize(
    "path",
    [
        "/v3/waInstance{id}/noSuchMethod/{token}",
        "/waInstance{id}/noSuchMethod/{token}",
        "/v3/waInstance{id}/getSettings/{token}/extra",  # a segment the method does not take
        "/partner/noSuchMethod/{token}",
    ],
)
async def test_an_unknown_method_is_still_not_found(
    client: httpx.AsyncClient, account: Account, path: str
) -> None:
    url = path.format(id=account.id, token=account.token)
    response = await client.options(url, headers=PREFLIGHT)
    assert_error(response, 404, "Not Found")
    assert response.headers["access-control-allow-origin"] == "*"


async def test_answers_of_methods_may_be_read_by_any_page(
    client: httpx.AsyncClient, account: Account, runtime: Runtime
) -> None:
    origin = {"Origin": "https://crm.example"}
    answer = await client.get(account.url("getStateInstance"), headers=origin)
    assert ok(answer) == {"stateInstance": "authorized"}
    assert answer.headers["access-control-allow-origin"] == "*"
    bare = await client.get(account.url("getStateInstance", v3=False))
    assert bare.headers["access-control-allow-origin"] == "*"
    wrong = await client.get(account.url("getSettings").replace(account.token, WRONG_TOKEN))
    assert_error(wrong, 401, "Unauthorized")
    assert wrong.headers["access-control-allow-origin"] == "*"
    assert wrong.headers["access-control-expose-headers"] == "Retry-After"
    verb = await client.post(account.url("getSettings"))
    assert_error(verb, 405, "Method Not Allowed")
    assert verb.headers["allow"] == "GET"  # the method's verbs, as before
    assert verb.headers["access-control-allow-origin"] == "*"
    partner = runtime.settings.partner_token.reveal()
    instances = await client.get(f"/partner/getInstances/{partner}")
    assert ok(instances) and instances.headers["access-control-allow-origin"] == "*"


async def test_other_routes_are_not_opened(client: httpx.AsyncClient) -> None:
    """Only the methods: the probes, metrics and the reference stay same-origin."""
    for path in ("/health", "/openapi.json"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "access-control-allow-origin" not in response.headers, path
