"""Liveness (``/health``) and readiness (``/ready``) probes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from maxgate import __version__
from maxgate.api.errors import error_response
from maxgate.api.routing import json_response
from maxgate.errors import MaxgateError, StorageFull
from maxgate.runtime import Runtime

log = logging.getLogger(__name__)

READY_TIMEOUT = 2.0  # seconds each check may take; a probe must answer well within its own


async def health(_request: Request) -> Response:
    """Liveness: the process answers (nothing else is checked)."""
    return json_response({"status": "ok", "version": __version__})


async def ready(request: Request) -> Response:
    """Readiness: 200 when the database answers ``SELECT 1`` and the blob store is reachable,
    and neither is full; 503 naming what failed otherwise ("storage full" for a full one). Both
    checks run at once, each bounded by READY_TIMEOUT.

    "Full" is what the stores' ``check()`` says (``maxgate.space``): the free space of a local
    blob directory's and a SQLite database's filesystem now, below a small minimum — so the
    answer follows reality, for every worker, and turns 200 again as soon as space is freed —
    and, where that cannot be measured (PostgreSQL's disk, quotas, S3), a write that found the
    store full less than ``FULL_MARK_SECONDS`` ago and no successful write since.
    """
    runtime: Runtime = request.app.state.runtime
    database, blobs = await asyncio.gather(
        _probe("database", runtime.db.check), _probe("blob store", runtime.blobs.check)
    )
    failed = [problem for problem in (database, blobs) if problem is not None]
    if stuck := runtime.maxuser.stuck():  # the maxuser watchdog's finding (issue 12)
        failed.append("maxuser sessions stuck: instances " + ", ".join(map(str, sorted(stuck))))
    if failed:
        return error_response(503, "Not ready: " + "; ".join(failed))
    return json_response({"status": "ready", "database": "ok", "blobs": "ok"})


async def _probe(what: str, check: Callable[[], Awaitable[None]]) -> str | None:
    """None when ``check`` succeeds in time, else a sentence naming ``what`` failed and how.

    The reason's details go to the log only: the probe is unauthenticated.
    """
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await check()
    except TimeoutError:
        log.warning("readiness: the %s did not answer within %g s", what, READY_TIMEOUT)
        return f"the {what} did not answer within {READY_TIMEOUT:g} seconds"
    except StorageFull as exc:
        log.warning("readiness: the %s is full: %s", what, exc)
        return f"storage full: the {what} has no space left"
    except (MaxgateError, OSError) as exc:
        log.warning("readiness: the %s failed: %s", what, exc)
        return f"the {what} is unreachable ({type(exc).__name__})"
    return None
