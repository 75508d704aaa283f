"""Journal rows as ``Message`` records, and back: the columns a message's kind adds.

A location, a shared contact card or a link preview is kept as JSON in ``messages.details``
(one column for the kinds that carry structured data besides text or a file).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from maxgate.domain.files import row_to_file
from maxgate.domain.messenger import InboundMessage
from maxgate.domain.records import LinkPreview, Location, Message, SharedContact
from maxgate.store.database import Row

_DETAILS = (("location", Location), ("contact", SharedContact), ("preview", LinkPreview))


def details_json(message: InboundMessage) -> str | None:
    """The ``messages.details`` column of an inbound message: its location, contact card or
    link preview as JSON; None when it has none."""
    found = {
        name: dataclasses.asdict(value)
        for name, _ in _DETAILS
        if (value := getattr(message, name)) is not None
    }
    return json.dumps(found, ensure_ascii=False) if found else None


def _details(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    stored = json.loads(text)
    return {name: kind(**stored[name]) for name, kind in _DETAILS if name in stored}


def row_to_message(row: Row) -> Message:
    m = row._mapping
    return Message(
        pk=m["id"],
        instance_id=m["instance_id"],
        chat_id=m["chat_id"],
        id_message=m["id_message"],
        direction=m["direction"],
        type_message=m["type_message"],
        timestamp=m["timestamp"],
        sender_id=m["sender_id"],
        sender_name=m["sender_name"],
        text=m["text"],
        caption=m["caption"],
        status=m["status"],
        status_description=m["status_description"],
        send_by_api=bool(m["send_by_api"]),
        quoted_id=m["quoted_id"],
        file=row_to_file(row, "f_") if m["f_id"] is not None else None,
        is_edited=bool(m["is_edited"]),
        is_deleted=bool(m["is_deleted"]),
        **_details(m["details"]),
    )
