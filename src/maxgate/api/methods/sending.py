"""Sending: sendMessage, sendFileByUpload, sendFileByUrl, uploadFile (spec §3 "Sending"),
sendLocation and sendContact (GREEN-API's v1 pages, https://green-api.com/en/docs/api/sending/
SendLocation/ and …/SendContact/: v3 has none of its own; chatIds as v3's).

File bodies are streamed into the blob store as they arrive (a temporary object, committed only
after the request validated), never held whole in memory; the size limit is enforced while
streaming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from maxgate.api import schemas
from maxgate.api.errors import bad_request, validation_failed
from maxgate.api.multipart import FilePartInfo, read_multipart
from maxgate.api.routing import Call, method
from maxgate.api.schemas import JsonBody, MultipartBody, Param, RawBody, prefixed_object
from maxgate.api.validation import CHAT_ID, Field, decode_json, validate
from maxgate.blobs import BlobStore, BlobWriter, StoredBlob
from maxgate.domain import filenames
from maxgate.domain.files import Files
from maxgate.domain.journal import Journal
from maxgate.domain.links import LinkSigner, file_link
from maxgate.domain.records import FileRecord, Location, SharedContact
from maxgate.errors import (
    ApiError,
    OutboundError,
    SizeLimitExceeded,
    UpstreamError,
)
from maxgate.net.client import OutboundClient
from maxgate.net.http import fetch
from maxgate.net.urlguard import UrlGuard, refusal
from maxgate.settings import Settings

MAX_TEXT = 4000

SEND_MESSAGE = (
    Field("chatId", pattern=CHAT_ID),
    Field("message", max_length=MAX_TEXT),
    Field("quotedMessageId", required=False),
    Field("linkPreview", bool, required=False),
    Field("typingTime", int, required=False, minimum=0, maximum=20000),
)
FILE_FIELDS = (
    Field("chatId", pattern=CHAT_ID),
    Field("fileName", required=False, max_length=255),
    Field("caption", required=False, allow_empty=True, max_length=MAX_TEXT),
    Field("quotedMessageId", required=False),
)
SEND_FILE_BY_URL = (
    Field("chatId", pattern=CHAT_ID),
    Field("urlFile", max_length=8192),
    Field("fileName", max_length=255),
    Field("caption", required=False, allow_empty=True, max_length=MAX_TEXT),
    Field("quotedMessageId", required=False),
)
SEND_LOCATION = (
    Field("chatId", pattern=CHAT_ID),
    Field("nameLocation", required=False, allow_empty=True, max_length=255),
    Field("address", required=False, allow_empty=True, max_length=1000),
    Field("latitude", float, minimum=-90, maximum=90),
    Field("longitude", float, minimum=-180, maximum=180),
    Field("quotedMessageId", required=False),
)
SEND_CONTACT = (
    Field("chatId", pattern=CHAT_ID),
    Field("quotedMessageId", required=False),
)
CONTACT_NAMES = ("firstName", "middleName", "lastName", "company")
CONTACT_FIELDS = (
    # "in international format (no +) 11 or 12 digits"
    Field("contact.phoneContact", int, minimum=10**10, maximum=10**12 - 1),
    *(Field(f"contact.{name}", required=False, allow_empty=True, max_length=255)
      for name in CONTACT_NAMES),
)  # fmt: skip
SEND_CONTACT_BODY = JsonBody(
    SEND_CONTACT,
    min_keys=2,
    nested=(("contact", prefixed_object(CONTACT_FIELDS, "contact"), True),),
)


UPLOAD_BODY = RawBody(
    "The file's bytes; Content-Type is its media type.",
    headers=(
        Param(
            "GA-Filename",
            "The file's name with its extension (optional).",
            type=str,
            where="header",
        ),
    ),
)


def header_text(value: str) -> str:
    """A header value as the client meant it: HTTP carries bytes, which Starlette decodes as
    Latin-1, but curl and every client send a UTF-8 file name as UTF-8 (``отчёт.pdf``)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value  # truly Latin-1 (or not text): keep what arrived


MIB = 1024 * 1024
"""The ``mb`` of the size message: a mebibyte, as the settings' ``MB`` (``100MB`` = 100 MiB)."""


def _whole_mib(size: int) -> int:
    return (size + MIB // 2) // MIB  # to the nearest, halves up


def too_large(size: int, limit: int) -> ApiError:
    """413 with the vendor's text, ``File exceeded max upload size. Size: <n>mb Limit: <m>mb``.

    Both sizes are in whole MiB (what the settings call MB), rounded to the nearest, so a
    120 MiB file reads ``120mb`` even when ``size`` is a multipart body's length, a few hundred
    bytes of part headers more than the file. A size over the limit never reads as the limit
    or less: ``size`` may be where the stream was cut (just past the limit), which then reads
    as the limit plus one (``Size: 101mb Limit: 100mb``).
    """
    shown_limit = max(1, _whole_mib(limit))
    shown_size = max(_whole_mib(size), shown_limit + 1)
    return ApiError(
        413, f"File exceeded max upload size. Size: {shown_size}mb Limit: {shown_limit}mb"
    )


def _precheck_length(call: Call, limit: int, *, slack: int = 0) -> None:
    declared = call.request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + slack:
        raise too_large(int(declared), limit)


@method("sendMessage", "POST", needs_upstream=True, body=SEND_MESSAGE, answer=schemas.ID_MESSAGE)
async def send_message(call: Call, *, journal: Journal) -> dict[str, Any]:
    """Queue a text message."""
    body = await call.json(SEND_MESSAGE)
    message = await journal.record_outgoing(
        call.instance,
        body["chatId"],
        text=body["message"],
        quoted_id=body.get("quotedMessageId"),
    )
    return {"idMessage": message.id_message}


@method("sendLocation", "POST", needs_upstream=True, body=SEND_LOCATION, answer=schemas.ID_MESSAGE)
async def send_location(call: Call, *, journal: Journal) -> dict[str, Any]:
    """Queue a location (coordinates, and an optional place name and address)."""
    body = await call.json(SEND_LOCATION)
    place = Location(
        latitude=float(body["latitude"]),
        longitude=float(body["longitude"]),
        name=body.get("nameLocation", ""),
        address=body.get("address", ""),
    )
    message = await journal.record_outgoing(
        call.instance, body["chatId"], location=place, quoted_id=body.get("quotedMessageId")
    )
    return {"idMessage": message.id_message}


@method(
    "sendContact", "POST", needs_upstream=True, body=SEND_CONTACT_BODY, answer=schemas.ID_MESSAGE
)
async def send_contact(call: Call, *, journal: Journal) -> dict[str, Any]:
    """Queue a contact card (a phone number and a name or company)."""
    raw = decode_json(await call.body_bytes())
    body = validate(raw, SEND_CONTACT, min_keys=2)
    card = shared_contact(raw.get("contact"))
    message = await journal.record_outgoing(
        call.instance, body["chatId"], contact=card, quoted_id=body.get("quotedMessageId")
    )
    return {"idMessage": message.id_message}


def shared_contact(value: Any) -> SharedContact:
    """The ``contact`` object of sendContact checked (Joi's texts, naming the whole path) and
    made a card with its vCard."""
    if value is None:
        raise validation_failed("'contact' is required")
    if not isinstance(value, dict):
        raise validation_failed("'contact' must be of type object")
    fields = validate({f"contact.{k}": v for k, v in value.items()}, CONTACT_FIELDS, min_keys=0)
    names = {name: fields.get(f"contact.{name}") or "" for name in CONTACT_NAMES}
    if not any(names.values()):
        raise validation_failed(
            f"'contact' must contain at least one of [{', '.join(CONTACT_NAMES)}]"
        )
    phone = str(fields["contact.phoneContact"])
    person = " ".join(n for n in (names["firstName"], names["middleName"], names["lastName"]) if n)
    display = person or names["company"]
    vcard = "\n".join(
        [
            "BEGIN:VCARD",
            "VERSION:3.0",
            f"N:{names['lastName']};{names['firstName']};{names['middleName']};;",
            f"FN:{display}",
            *([f"ORG:{names['company']}"] if names["company"] else []),
            f"TEL;type=CELL;waid={phone}:+{phone}",
            "END:VCARD",
        ]
    )
    return SharedContact(display_name=display, vcard=vcard, phone=phone)


@dataclasses.dataclass(frozen=True, slots=True)
class _Sending:
    """What queueing a file takes: the journal, and what its link is made with."""

    journal: Journal
    signer: LinkSigner
    retention: float


async def _send_file(
    call: Call,
    sending: _Sending,
    chat_id: str,
    blob: StoredBlob,
    name: str,
    mime: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    message = await sending.journal.record_outgoing(
        call.instance,
        chat_id,
        blob=blob,
        file_name=name,
        mime_type=mime,
        type_message=filenames.type_message_for(mime),
        caption=body.get("caption") or "",
        quoted_id=body.get("quotedMessageId"),
    )
    assert message.file is not None
    return {
        "idMessage": message.id_message,
        "urlFile": file_link(sending.signer, message.file, sending.retention),
    }


@method(
    "sendFileByUpload",
    "POST",
    needs_upstream=True,
    body=MultipartBody(FILE_FIELDS),
    answer=schemas.SENT_FILE,
)
async def send_file_by_upload(
    call: Call, *, journal: Journal, blobs: BlobStore, signer: LinkSigner, settings: Settings
) -> dict[str, Any]:
    """Queue a file sent as multipart/form-data (streamed into storage)."""
    _precheck_length(call, settings.max_file_size, slack=64 * 1024)
    content_type = call.request.headers.get("content-type", "")
    async with _upload(blobs, settings.max_file_size) as writer:

        async def open_sink(_info: FilePartInfo) -> BlobWriter:
            return writer

        form = await read_multipart(content_type, call.request.stream(), open_sink)
        body = _check_fields(form.fields)
        if form.file is None or writer.size == 0:  # an empty file is no file (as uploadFile)
            raise validation_failed("'file' is required")
        declared_name = filenames.clean_name(body.get("fileName")) or filenames.clean_name(
            form.file.filename
        )
        mime = filenames.guess_mime(declared_name, form.file.content_type)
        name = declared_name or filenames.made_up_name(mime)
        blob = await writer.commit()
    sending = _Sending(journal, signer, settings.file_retention)
    return await _send_file(call, sending, body["chatId"], blob, name, mime, body)


@contextlib.asynccontextmanager
async def _upload(blobs: BlobStore, limit: int) -> AsyncIterator[BlobWriter]:
    """A blob writer for a client's upload: dropped unless committed; too big → 413."""
    try:
        async with blobs.writer(limit=limit) as writer:
            yield writer
    except SizeLimitExceeded as exc:
        raise too_large(exc.size, exc.limit) from None


def _check_fields(fields: dict[str, str]) -> dict[str, Any]:
    return validate(fields, FILE_FIELDS, min_keys=0)


@method(
    "sendFileByUrl", "POST", needs_upstream=True, body=SEND_FILE_BY_URL, answer=schemas.SENT_FILE
)
async def send_file_by_url(
    call: Call,
    *,
    journal: Journal,
    files: Files,
    blobs: BlobStore,
    signer: LinkSigner,
    guard: UrlGuard,
    http: Callable[[], OutboundClient],
    settings: Settings,
) -> dict[str, Any]:
    """Queue a file fetched from a URL (through the outbound guard) or from our own link."""
    body = await call.json(SEND_FILE_BY_URL)
    name = filenames.clean_name(body["fileName"])
    if not name:
        raise validation_failed(f"'fileName' with value '{body['fileName']}' is not a file name")
    sending = _Sending(journal, signer, settings.file_retention)
    own = await _own_file(files, signer, body["urlFile"])
    if own is not None:
        try:
            present = await files.materialize(own)
        except UpstreamError as exc:
            raise bad_request(f"File from url could not be downloaded: {exc}") from None
        assert present.sha256 is not None and present.size is not None
        blob = StoredBlob(sha256=present.sha256, size=present.size, key=files.key(present.sha256))
        mime = filenames.guess_mime(name, present.mime_type)
        return await _send_file(call, sending, body["chatId"], blob, name, mime, body)
    limit, deadline = settings.max_file_size, settings.outbound_timeout
    blob, declared_mime = await _download(http(), guard, blobs, body["urlFile"], limit, deadline)
    mime = filenames.guess_mime(name, declared_mime)
    return await _send_file(call, sending, body["chatId"], blob, name, mime, body)


async def _download(
    http: OutboundClient,
    guard: UrlGuard,
    blobs: BlobStore,
    url: str,
    limit: int,
    deadline: float,
) -> tuple[StoredBlob, str | None]:
    try:
        async with fetch(http, url, limit=limit, guard=guard, deadline=deadline) as (head, chunks):
            blob = await blobs.write(chunks, limit=limit)
    except SizeLimitExceeded as exc:
        raise too_large(exc.size, exc.limit) from None
    except OutboundError as exc:
        raise bad_request(f"File from url could not be downloaded: {refusal(exc)}") from None
    return blob, head.content_type


async def _own_file(files: Files, signer: LinkSigner, url: str) -> FileRecord | None:
    """The file behind one of this server's own signed links, or None for other URLs."""
    base = urlsplit(signer.base_url)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise bad_request("File from url could not be downloaded: the URL is malformed") from None
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        return None
    prefix = base.path.rstrip("/") + "/files/"
    if not parts.path.startswith(prefix):
        return None
    segments = parts.path[len(prefix) :].split("/")
    query = parse_qs(parts.query)
    try:
        instance_id, file_id = int(segments[0]), segments[1]
        expires = int(query["exp"][0])
        signature = query["sig"][0]
    except (IndexError, KeyError, ValueError):
        return None
    if expires < time.time() or not signer.verify(instance_id, file_id, expires, signature):
        raise bad_request("File from url could not be downloaded: the link is expired or invalid")
    return await files.get(file_id)


@method("uploadFile", "POST", body=UPLOAD_BODY, answer=schemas.UPLOADED_FILE)
async def upload_file(
    call: Call, *, files: Files, blobs: BlobStore, settings: Settings, signer: LinkSigner
) -> dict[str, Any]:
    """Store a raw body as a file and answer a link usable with sendFileByUrl."""
    _precheck_length(call, settings.max_file_size)
    raw_name = header_text(call.request.headers.get("ga-filename", ""))
    async with _upload(blobs, settings.max_file_size) as writer:
        async for chunk in call.request.stream():
            await writer.write(chunk)
        if writer.size == 0:
            raise validation_failed("'file' is required")
        blob = await writer.commit()
    declared = call.request.headers.get("content-type")
    name = filenames.clean_name(raw_name)
    mime = filenames.guess_mime(name, declared) if name else filenames.guess_mime("", declared)
    name = name or filenames.made_up_name(mime)
    file = await files.create_stored(call.instance.id, blob, name, mime)
    return {"urlFile": file_link(signer, file, settings.file_retention)}
