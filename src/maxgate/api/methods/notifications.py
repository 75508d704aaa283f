"""Receiving by HTTP API: receiveNotification, deleteNotification, getWebhooksCount,
clearWebhooksQueue (spec §3 Receiving, §4.1)."""

from __future__ import annotations

from typing import Any

import anyio

from maxgate.api import schemas
from maxgate.api.errors import validation_failed
from maxgate.api.routing import Call, method
from maxgate.api.schemas import Param
from maxgate.domain.notifications import Notifications
from maxgate.domain.webhooks import webhook_url

RECEIVE_TIMEOUT = Param(
    "receiveTimeout",
    "Seconds to wait for a notification before answering null.",
    default=5,
    minimum=5,
    maximum=60,
)
RECEIPT_ID = Param(
    "receiptId", "The receiptId of the notification to delete.", where="path", required=True
)


@method(
    "receiveNotification", "GET", query=(RECEIVE_TIMEOUT,), answer=schemas.RECEIVED_NOTIFICATION
)
async def receive_notification(
    call: Call, *, notifications: Notifications
) -> dict[str, Any] | None:
    """The oldest queued notification, waiting up to receiveTimeout seconds for one; null after
    the timeout. The same head comes back until deleteNotification removes it. While the instance
    has a webhookUrl, its queue goes there, and this waits out the timeout and answers null."""
    wait = RECEIVE_TIMEOUT.read(call.request.query_params)
    if webhook_url(call.instance):
        await anyio.sleep(wait)
        return None
    return await notifications.receive(call.instance.id, wait)


@method(
    "deleteNotification",
    "DELETE",
    takes_extra=True,
    extra=RECEIPT_ID,
    answer=schemas.DELETED_NOTIFICATION,
)
async def delete_notification(call: Call, *, notifications: Notifications) -> dict[str, Any]:
    """Remove a notification from the queue by its receiptId."""
    raw = call.extra or ""
    if not raw.isdigit() or len(raw) > 18:
        raise validation_failed("'receiptId' must be a number")
    if await notifications.delete(call.instance.id, int(raw)):
        return {"result": True, "reason": ""}
    return {"result": False, "reason": f"Notification with receiptId {raw} not found"}


@method("getWebhooksCount", "GET", answer=schemas.COUNT)
async def get_webhooks_count(call: Call, *, notifications: Notifications) -> dict[str, Any]:
    """How many notifications wait in the queue (for receiveNotification or the webhook)."""
    return {"count": await notifications.count(call.instance.id)}


@method("clearWebhooksQueue", "GET", answer=schemas.CLEARED)
async def clear_webhooks_queue(call: Call, *, notifications: Notifications) -> dict[str, Any]:
    """Drop every queued notification of the instance."""
    await notifications.clear(call.instance.id)
    return {"isCleared": True}
