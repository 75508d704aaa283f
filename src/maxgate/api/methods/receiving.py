"""Receiving: downloadFile (spec §2) — a working link to the file of any journaled message."""

from __future__ import annotations

from typing import Any

from maxgate.api import schemas
from maxgate.api.errors import bad_request
from maxgate.api.routing import Call, method
from maxgate.api.validation import CHAT_ID, Field
from maxgate.domain.files import Files
from maxgate.domain.journal import Journal
from maxgate.domain.links import LinkSigner, file_link
from maxgate.errors import ApiError, BlobError, UpstreamError
from maxgate.settings import Settings

DOWNLOAD_FILE = (Field("chatId", pattern=CHAT_ID), Field("idMessage", max_length=64))


@method("downloadFile", "POST", body=DOWNLOAD_FILE, answer=schemas.DOWNLOAD_URL)
async def download_file(
    call: Call, *, files: Files, journal: Journal, settings: Settings, signer: LinkSigner
) -> dict[str, Any]:
    """The link to a message's file; brings evicted bytes back from the messenger first.

    400 when this instance has no such message or it carries no file; 500 when our copy is gone
    and the messenger no longer has it (or does not deliver it in time).
    """
    body = await call.json(DOWNLOAD_FILE)
    chat_id, id_message = body["chatId"], body["idMessage"]
    found = await journal.file_of(call.instance.id, chat_id, id_message)
    if found is None:
        raise bad_request(
            f"File message encrypted url not found by chatId {chat_id} and idMessage {id_message}"
        )
    try:
        file = await files.materialize(found)
    except (UpstreamError, BlobError, TimeoutError):
        raise ApiError(
            500,
            f"Internal error when downloading file by chatId {chat_id} and idMessage {id_message}",
        ) from None
    return {"downloadUrl": file_link(signer, file, settings.file_retention)}
