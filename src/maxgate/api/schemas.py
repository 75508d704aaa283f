"""JSON Schemas of the wire shapes, attached to each method for the OpenAPI document.

A method declares its schema info next to its registration::

    @method("sendMessage", "POST", body=SEND_MESSAGE, answer=schemas.ID_MESSAGE)

``body`` is the very ``Field`` table the method validates with (or a ``JsonBody``,
``MultipartBody`` or ``RawBody`` around one), so the document cannot drift from the checks;
``query`` and ``extra`` are ``Param`` objects, which also read the value (``Param.read``);
``answer`` is the JSON Schema of the 200 body, built from the shapes below.
``maxgate.api.openapi`` turns all of it into the document and refuses a method without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from maxgate.api.validation import Field, query_int

JsonSchema = dict[str, Any]

_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def field_schema(field: Field) -> JsonSchema:
    """The JSON Schema of one body field, with the constraints ``check_field`` enforces."""
    schema: JsonSchema = {"type": _TYPES[field.type]}
    if field.type is str:
        if not field.allow_empty:
            schema["minLength"] = 1
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if field.pattern is not None:
            schema["pattern"] = f"^(?:{field.pattern.pattern})$"  # the check is a fullmatch
        if field.choices:
            schema["enum"] = list(field.choices)
    if field.minimum is not None:
        schema["minimum"] = _number(field.minimum)
    if field.maximum is not None:
        schema["maximum"] = _number(field.maximum)
    return schema


def object_schema(fields: Sequence[Field], *, min_keys: int | None = None) -> JsonSchema:
    """The JSON Schema of a body checked by ``validate(body, fields, min_keys=…)``.

    Unknown keys are allowed (spec §1.5: they are ignored).
    """
    schema: JsonSchema = {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    if min_keys is not None and min_keys > len(required):
        schema["minProperties"] = min_keys
    return schema


@dataclasses.dataclass(frozen=True, slots=True)
class Param:
    """A documented query, header or path parameter; whole-number ones also read themselves."""

    name: str
    description: str
    type: type = int
    default: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    where: str = "query"  # query | header | path
    required: bool = False

    def schema(self) -> JsonSchema:
        """The parameter's JSON Schema."""
        schema: JsonSchema = {"type": _TYPES[self.type]}
        for key in ("default", "minimum", "maximum"):
            value = getattr(self, key)
            if value is not None:
                schema[key] = value
        return schema

    def read(self, params: Mapping[str, str]) -> int:
        """The value among ``params`` (the query), within bounds, with the vendor's messages."""
        assert self.type is int and self.default is not None
        assert self.minimum is not None and self.maximum is not None
        return query_int(
            params.get(self.name), self.name, self.default, lo=self.minimum, hi=self.maximum
        )


@dataclasses.dataclass(frozen=True, slots=True)
class JsonBody:
    """A JSON object body checked against a Field table (``min_keys`` as ``validate``'s).

    ``nested`` names the properties a Field cannot describe — an object or an array, checked
    by the handler — with their schema and whether they are required."""

    fields: tuple[Field, ...]
    min_keys: int | None = None
    nested: tuple[tuple[str, JsonSchema, bool], ...] = ()

    def schema(self) -> JsonSchema:
        """The body's JSON Schema."""
        schema = object_schema(self.fields, min_keys=self.min_keys)
        for name, part, required in self.nested:
            schema["properties"][name] = part
            if required:
                schema["required"] = [*schema.get("required", []), name]
        return schema


def prefixed_object(fields: Sequence[Field], prefix: str) -> JsonSchema:
    """The JSON Schema of a nested object whose Fields are named ``<prefix>.<name>`` (so their
    messages name the whole path, as Joi's do: ``'contact.phoneContact' is required``)."""
    schema = object_schema(fields)
    schema["properties"] = {
        name.removeprefix(prefix + "."): part for name, part in schema["properties"].items()
    }
    if "required" in schema:
        schema["required"] = [name.removeprefix(prefix + ".") for name in schema["required"]]
    return schema


@dataclasses.dataclass(frozen=True, slots=True)
class MultipartBody:
    """A multipart/form-data body: text fields checked against a Field table, and a file part."""

    fields: tuple[Field, ...]
    file: str = "file"

    def schema(self) -> JsonSchema:
        """The form's JSON Schema (the file part is binary)."""
        schema = object_schema(self.fields)
        schema["properties"][self.file] = {"type": "string", "contentMediaType": "*/*"}
        schema["required"] = [*schema.get("required", []), self.file]
        return schema


@dataclasses.dataclass(frozen=True, slots=True)
class RawBody:
    """A body of raw bytes (any media type), with the headers that describe it."""

    description: str
    headers: tuple[Param, ...] = ()


Body = JsonBody | MultipartBody | RawBody


def as_body(body: Sequence[Field] | Body | None) -> Body | None:
    """A method's ``body=``: a bare Field table means a JSON object body."""
    if body is None or isinstance(body, JsonBody | MultipartBody | RawBody):
        return body
    return JsonBody(tuple(body))


# ---- building blocks of answers ---------------------------------------------------------------

STRING: JsonSchema = {"type": "string"}
INTEGER: JsonSchema = {"type": "integer"}
BOOLEAN: JsonSchema = {"type": "boolean"}
TRUE: JsonSchema = {"const": True}
LINK: JsonSchema = {"type": "string", "format": "uri", "description": "A signed file link."}
CHAT_ID: JsonSchema = {"type": "string", "pattern": "^-?[0-9]{1,19}$"}
ANY_OBJECT: JsonSchema = {"type": "object"}


def obj(
    required: Mapping[str, JsonSchema], optional: Mapping[str, JsonSchema] | None = None
) -> JsonSchema:
    """An object with these required and optional properties (more may come)."""
    schema: JsonSchema = {
        "type": "object",
        "properties": {**required, **(optional or {})},
    }
    if required:
        schema["required"] = list(required)
    return schema


def array(items: JsonSchema) -> JsonSchema:
    """A JSON array of ``items``."""
    return {"type": "array", "items": items}


def nullable(schema: JsonSchema) -> JsonSchema:
    """``schema`` or the JSON literal ``null`` (an empty queue, spec §1.6)."""
    return {"anyOf": [schema, {"type": "null"}]}


# ---- answers (spec §3, §4) -------------------------------------------------------------------

STATE_INSTANCE: JsonSchema = {
    "type": "string",
    "enum": ["notAuthorized", "authorized", "blocked", "starting", "suspended"],
}
ID_MESSAGE = obj({"idMessage": STRING})
SENT_FILE = obj({"idMessage": STRING, "urlFile": LINK})
UPLOADED_FILE = obj({"urlFile": LINK})
DOWNLOAD_URL = obj({"downloadUrl": LINK})
STATE = obj({"stateInstance": STATE_INSTANCE})
SAVED_SETTINGS = obj({"saveSettings": TRUE})
ACCOUNT_SETTINGS = obj(
    {
        "phone": STRING,
        "chatId": STRING,
        "avatar": STRING,
        "stateInstance": STATE_INSTANCE,
        "deviceId": STRING,
    }
)
CHECKED_ACCOUNT = obj({"exist": BOOLEAN, "chatId": STRING})
FORWARDED = obj({"messages": array(STRING)})
EMPTY: JsonSchema = {"type": "object", "maxProperties": 0}
SET_READ = obj({"setRead": BOOLEAN})
CONTACTS = array(
    obj(
        {
            "chatId": CHAT_ID,
            "name": STRING,
            "contactName": STRING,
            "type": {"type": "string", "enum": ["user", "group"]},
        },
        {"phoneNumber": INTEGER},
    )
)
CONTACT_INFO = obj(
    {
        "avatar": STRING,
        "name": STRING,
        "contactName": STRING,
        "chatId": CHAT_ID,
        "phoneNumber": INTEGER,
    }
)
AVATAR = obj({"urlAvatar": STRING})
COUNT = obj({"count": {"type": "integer", "minimum": 0}})
CLEARED = obj({"isCleared": TRUE})

JOURNAL_ITEM = obj(
    {
        "type": {"type": "string", "enum": ["incoming", "outgoing"]},
        "idMessage": STRING,
        "timestamp": INTEGER,
        "typeMessage": STRING,
        "chatId": CHAT_ID,
        "senderId": STRING,
        "senderName": STRING,
        "isForwarded": BOOLEAN,
        "forwardingScore": INTEGER,
        "isEdited": BOOLEAN,
        "isDeleted": BOOLEAN,
    },
    {
        "senderContactName": STRING,
        "statusMessage": {
            "type": "string",
            "enum": ["pending", "sent", "delivered", "read", "failed"],
        },
        "sendByApi": BOOLEAN,
        "description": STRING,
        "textMessage": STRING,
        "downloadUrl": LINK,
        "caption": STRING,
        "fileName": STRING,
        "jpegThumbnail": STRING,
        "mimeType": STRING,
        "isAnimated": BOOLEAN,
        "quotedMessage": obj({"stanzaId": STRING}),
        "location": obj({"latitude": {"type": "number"}, "longitude": {"type": "number"}}),
        "contact": obj({"displayName": STRING, "vcard": STRING}),
        "extendedTextMessage": obj({"text": STRING}),
    },
)
JOURNAL = array(JOURNAL_ITEM)
CHATS = array(obj({"chatId": CHAT_ID, "phoneNumber": INTEGER}))
MESSAGES_QUEUE = array(
    obj(
        {
            "messageID": STRING,
            "type": {"type": "string", "enum": ["sendMessage", "sendFile"]},
            "body": obj(
                {"chatId": CHAT_ID},
                {"message": STRING, "fileName": STRING, "caption": STRING, "urlFile": LINK},
            ),
        }
    )
)

INSTANCE_DATA = obj({"idInstance": INTEGER, "wid": STRING, "typeInstance": STRING})
NOTIFICATION = obj(
    {
        "typeWebhook": {
            "type": "string",
            "enum": [
                "incomingMessageReceived",
                "outgoingMessageReceived",
                "outgoingAPIMessageReceived",
                "outgoingMessageStatus",
                "stateInstanceChanged",
            ],
        },
        "instanceData": INSTANCE_DATA,
        "timestamp": INTEGER,
    },
    {
        "idMessage": STRING,
        "senderData": ANY_OBJECT,
        "messageData": ANY_OBJECT,
        "chatId": CHAT_ID,
        "status": STRING,
        "description": STRING,
        "stateInstance": STATE_INSTANCE,
    },
)
RECEIVED_NOTIFICATION = nullable(obj({"receiptId": INTEGER, "body": NOTIFICATION}))
DELETED_NOTIFICATION = obj({"result": BOOLEAN}, {"reason": STRING})

CREATED_INSTANCE = obj(
    {"idInstance": INTEGER, "apiTokenInstance": STRING, "typeInstance": {"const": "v3"}}
)
INSTANCES = array(
    obj(
        {
            "idInstance": INTEGER,
            "name": STRING,
            "typeInstance": {"const": "v3"},
            "timeCreated": INTEGER,
        },
        {"stateInstance": STATE_INSTANCE, "chatId": STRING, "deleted": BOOLEAN},
    )
)
DELETED_INSTANCE = obj({"deleteInstanceAccount": BOOLEAN}, {"reason": STRING})
