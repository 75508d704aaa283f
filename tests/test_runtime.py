"""The runtime's lifecycle: it always shuts down promptly, whatever is in flight."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from maxgate.app import create_app
from maxgate.settings import load_settings


async def test_shutdown_right_after_a_send_is_prompt(tmp_path: Path) -> None:
    """Regression: on Python 3.11 asyncio.wait_for could swallow the cancellation of the outbox
    loop when its wake-up event fired at the same moment, and shutdown then hung forever."""
    settings = load_settings(
        overrides={"data_dir": str(tmp_path), "rate_limits": "false"}, environ={}
    )
    for _ in range(5):
        app = create_app(settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        runtime = app.state.runtime
        instance, token = await runtime.instances.create()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                f"/waInstance{instance.id}/sendMessage/{token}",
                json={"chatId": "20000001", "message": "bye"},
            )
            assert answer.status_code == 200
        started = time.monotonic()
        async with asyncio.timeout(10):
            await lifespan.__aexit__(None, None, None)
        assert time.monotonic() - started < 5
