"""forwardMessages: copies of journaled messages sent to another chat (GREEN-API's v1 page,
https://green-api.com/en/docs/api/sending/ForwardMessages/; v3 has none of its own).

Each forwarded message is a new outgoing message with its own idMessage (GREEN-API answers
the same id N times, a known bug), journaled and queued as any send, carrying the original's
text, file, location or contact. Only what this instance's journal holds can be forwarded.
"""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import bad_request, validation_failed
from maxgate.api.routing import Call, method
from maxgate.api.schemas import JsonBody, array
from maxgate.api.validation import CHAT_ID, Field, decode_json, validate
from maxgate.blobs import StoredBlob
from maxgate.domain.files import Files
from maxgate.domain.journal import Journal
from maxgate.domain.records import Message
from maxgate.errors import UpstreamError

MAX_MESSAGES = 100  # one request's forwards (a decision: the vendor names no limit)

FORWARD_FIELDS = (
    Field("chatId", pattern=CHAT_ID),
    Field("chatIdFrom", pattern=CHAT_ID),
)
FORWARD_MESSAGES = JsonBody(
    FORWARD_FIELDS,
    min_keys=3,
    nested=(
        (
            "messages",
            {**array({"type": "string", "minLength": 1}), "minItems": 1, "maxItems": MAX_MESSAGES},
            True,
        ),
    ),
)


def message_ids(value: Any) -> list[str]:
    """The ``messages`` array checked, with Joi's texts (the vendor documents ``'messages'
    must contain at least 1 items``)."""
    if value is None:
        raise validation_failed("'messages' is required")
    if not isinstance(value, list):
        raise validation_failed("'messages' must be an array")
    if not value:
        raise validation_failed("'messages' must contain at least 1 items")
    if len(value) > MAX_MESSAGES:
        raise validation_failed(
            f"'messages' must contain less than or equal to {MAX_MESSAGES} items"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise validation_failed(f"'messages[{index}]' must be a string")
        if not item:
            raise validation_failed(f"'messages[{index}]' is not allowed to be empty")
    return list(value)


@method(
    "forwardMessages", "POST", needs_upstream=True, body=FORWARD_MESSAGES, answer=schemas.FORWARDED
)
async def forward_messages(call: Call, *, journal: Journal, files: Files) -> dict[str, Any]:
    """Forward messages of one chat to another: ``{"messages": [<a new idMessage each>]}``."""
    raw = decode_json(await call.body_bytes())
    body = validate(raw, FORWARD_FIELDS, min_keys=3)
    wanted = message_ids(raw.get("messages"))
    originals: list[Message] = []
    for id_message in wanted:  # all found before any is queued: none or all go
        found = await journal.get(call.instance.id, body["chatIdFrom"], id_message)
        if found is None or found.is_deleted:
            raise bad_request(f"Message {id_message} not found in chat {body['chatIdFrom']}")
        originals.append(found)
    sent = [await _forward(journal, files, call, body["chatId"], m) for m in originals]
    return {"messages": sent}


async def _forward(journal: Journal, files: Files, call: Call, chat_id: str, of: Message) -> str:
    blob = None
    if of.file is not None:
        try:
            present = await files.materialize(of.file)
        except UpstreamError:
            raise bad_request(f"Message {of.id_message}: its file is no longer available") from None
        assert present.sha256 is not None and present.size is not None
        blob = StoredBlob(sha256=present.sha256, size=present.size, key=files.key(present.sha256))
    copy = await journal.record_outgoing(
        call.instance,
        chat_id,
        text=of.text,
        blob=blob,
        file_name=of.file.file_name if of.file else "",
        mime_type=of.file.mime_type if of.file else "",
        type_message=of.type_message,
        caption=of.caption,
        location=of.location,
        contact=of.contact,
        forwarded=(of.chat_id, of.id_message),
    )
    return copy.id_message
