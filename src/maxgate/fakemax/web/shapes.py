"""The payload shapes the web fake sends, each built to what a PyMax 2.5.0 model parses.

Keys are camelCase because PyMax's models (``CamelModel``, ``pymax/types/domain/base.py``)
alias every field with ``to_camel``; attachment kinds are ``_type``. Where each shape was read:

* ``user`` — ``User`` and ``Name`` (``pymax/types/domain/user.py``, ``name.py``); ``phone`` is
  an int there.
* ``profile`` — ``Profile`` (``types/domain/profile.py``): ``{contact: User, profileOptions}``.
* ``chat`` — ``Chat`` (``types/domain/chat.py``): ``id``, ``type``, ``status`` and ``owner`` are
  required; ``participants`` maps user id to join time.
* ``message`` — ``Message`` (``types/domain/message.py``): ``id``, ``time`` and ``type`` are
  required; its ``_unwrap_message_event`` validator accepts ``{chatId, message: {...}}``, the
  wrapper of NOTIF_MESSAGE and of the MSG_SEND answer (``message_event``).
* attachments — ``FileAttachment`` (``attachments/file.py``: fileId, name, size, token),
  ``PhotoAttachment`` (``photo.py``: baseUrl, width, height, photoId, photoToken),
  ``VideoAttachment`` (``video.py``: videoId, token, thumbnail, width, height, duration,
  videoType), ``AudioAttachment`` (``audio.py``: audioId, url, token, duration). A known
  ``_type`` with a missing field fails (``UnknownAttachment`` refuses known types), so a shape
  drift here fails PyMax's parsing in the tests.
* ``file_request`` — ``FileRequest`` (``attachments/file.py``): ``{unsafe, url}``.
* ``video_request`` — ``VideoRequest`` (``attachments/video.py``): ``MP4_<quality>`` keys, from
  which PyMax picks the highest.
* ``message_deleted`` — ``MessageDeleteEvent`` (``types/events/message.py``): messageIds,
  chatId; ``read_mark`` — ``MessageReadEvent`` (``types/events/mark.py``): chatId, userId,
  mark, setAsUnread.
* ``error`` — ``MaxApiError`` (``types/domain/error.py``): ``error`` and ``message`` required.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from maxgate.fakemax.web.world import Chat, Message, Person, StoredFile

LinkMaker = Callable[[StoredFile], str]


def user(person: Person) -> dict[str, Any]:
    """A ``User``."""
    full = " ".join(part for part in (person.first_name, person.last_name) if part)
    return {
        "id": person.user_id,
        "names": [
            {
                "name": full,
                "firstName": person.first_name,
                "lastName": person.last_name or "",
                "type": "ONEME",
            }
        ],
        "phone": person.phone,
        "accountStatus": 0,
        "updateTime": 0,
        "options": [],
    }


def profile(person: Person) -> dict[str, Any]:
    """A ``Profile``: the logged-in account."""
    return {"contact": user(person), "profileOptions": []}


def attachment(stored: StoredFile, link: LinkMaker) -> dict[str, Any]:
    """The attachment of one file, with fresh temporary URLs where the shape carries one."""
    if stored.kind == "photo":
        return {
            "_type": "PHOTO",
            "baseUrl": link(stored),
            "width": stored.width,
            "height": stored.height,
            "photoId": stored.file_id,
            "photoToken": stored.token,
        }
    if stored.kind == "video":
        return {
            "_type": "VIDEO",
            "videoId": stored.file_id,
            "token": stored.token,
            "thumbnail": link(stored),
            "width": stored.width,
            "height": stored.height,
            "duration": stored.duration,
            "videoType": 0,
        }
    if stored.kind == "audio":
        return {
            "_type": "AUDIO",
            "audioId": stored.file_id,
            "url": link(stored),
            "token": stored.token,
            "duration": stored.duration,
        }
    return {
        "_type": "FILE",
        "fileId": stored.file_id,
        "name": stored.name,
        "size": len(stored.data),
        "token": stored.token,
    }


def message(msg: Message, link: LinkMaker) -> dict[str, Any]:
    """A ``Message`` as history, MSG_GET and ``Chat.lastMessage`` carry it (no chat id)."""
    body: dict[str, Any] = {
        "id": msg.message_id,
        "sender": msg.sender,
        "text": msg.text,
        "time": msg.time,
        "type": "USER",
        "attaches": [attachment(stored, link) for stored in msg.files],
        "elements": [],
    }
    if msg.cid is not None:
        body["cid"] = msg.cid
    if msg.removed:
        body["status"] = "REMOVED"
    elif msg.edited:
        body["status"] = "EDITED"  # resolve_message (dispatch/resolvers.py): an edit event
    return body


def message_event(msg: Message, chat: Chat, link: LinkMaker) -> dict[str, Any]:
    """The wrapper of NOTIF_MESSAGE and of the MSG_SEND answer."""
    return {
        "chatId": chat.chat_id,
        "message": message(msg, link),
        "unread": 0,
        "mark": chat.mark,
        "ttl": False,
    }


def chat(room: Chat, link: LinkMaker) -> dict[str, Any]:
    """A ``Chat``: a dialog."""
    last = next((m for m in reversed(room.messages) if not m.removed), None)
    body: dict[str, Any] = {
        "id": room.chat_id,
        "type": "DIALOG",
        "status": "ACTIVE",
        "owner": room.owner,
        "participants": dict(room.members),
        "lastEventTime": last.time if last else room.created,
        "created": room.created,
        "newMessages": 0,
        "messagesCount": len(room.messages),
        "cid": 0,
    }
    if last is not None:
        body["lastMessage"] = message(last, link)
    return body


def message_deleted(chat_id: int, message_ids: list[int]) -> dict[str, Any]:
    """A ``MessageDeleteEvent`` (NOTIF_MSG_DELETE)."""
    return {"chatId": chat_id, "messageIds": message_ids}


def read_mark(chat_id: int, user_id: int, mark: int) -> dict[str, Any]:
    """A ``MessageReadEvent`` (NOTIF_MARK): ``user_id`` has read ``chat_id`` up to ``mark``."""
    return {"chatId": chat_id, "userId": user_id, "mark": mark, "setAsUnread": False}


def file_request(url: str) -> dict[str, Any]:
    """A ``FileRequest`` (FILE_DOWNLOAD)."""
    return {"unsafe": False, "url": url}


def video_request(url: str) -> dict[str, Any]:
    """A ``VideoRequest`` (VIDEO_PLAY): the same bytes at two qualities."""
    return {"MP4_480": url, "MP4_720": url, "cache": False}


def error(code: str, text: str) -> dict[str, Any]:
    """A ``MaxApiError`` (the payload of a cmd 3 frame)."""
    return {"error": code, "message": text, "title": text, "localizedMessage": text}
