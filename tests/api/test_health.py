"""/health (liveness) and /ready (readiness: the database and the blob store, bounded in time)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from maxgate import __version__
from maxgate.api import health
from maxgate.errors import BlobError, StoreError
from maxgate.runtime import Runtime
from tests.api._support import assert_error, ok
from tests.api.conftest import GatewayFactory


async def test_health_is_liveness(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/health")) == {"status": "ok", "version": __version__}
    assert (await client.head("/health")).status_code == 200


async def test_ready_when_database_and_blobs_answer(client: httpx.AsyncClient) -> None:
    body = ok(await client.get("/ready"))
    assert body == {"status": "ready", "database": "ok", "blobs": "ok"}


async def test_not_ready_names_the_database(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down() -> None:
        raise StoreError("metadata store read failed: OperationalError")

    monkeypatch.setattr(runtime.db, "check", down)
    response = await client.get("/ready")
    assert_error(response, 503, "Not ready: the database is unreachable (StoreError)")


async def test_not_ready_names_both_and_bounds_the_wait(
    client: httpx.AsyncClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs() -> None:
        await asyncio.sleep(30)

    async def down() -> None:
        raise BlobError("blob store directory /somewhere is not writable")

    monkeypatch.setattr(health, "READY_TIMEOUT", 0.1)
    monkeypatch.setattr(runtime.db, "check", hangs)
    monkeypatch.setattr(runtime.blobs, "check", down)
    started = asyncio.get_running_loop().time()
    response = await client.get("/ready")
    assert asyncio.get_running_loop().time() - started < 5
    message = assert_error(response, 503)
    assert message == (
        "Not ready: the database did not answer within 0.1 seconds; "
        "the blob store is unreachable (BlobError)"
    )
    assert "/somewhere" not in message  # details go to the log only


@pytest.mark.timeout(30)
async def test_an_unreachable_s3_store_is_not_ready(
    make_gateway: GatewayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real blob store that does not answer (nothing listens on the port): a bounded 503."""
    monkeypatch.setattr(health, "READY_TIMEOUT", 0.5)
    gateway = await make_gateway(
        blob_url="s3://bucket/prefix?endpoint=http://127.0.0.1:9&region=us-east-1"
        "&access_key_id=x&secret_access_key=y&allow_http=true"
    )
    message = assert_error(await gateway.client.get("/ready"), 503)
    assert message.startswith("Not ready: the blob store")
    assert "database" not in message
