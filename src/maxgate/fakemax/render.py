"""Records rendered as the Bot API's JSON objects (``User``, ``Chat``, ``Message``,
``Attachment``, ``Update``), every field the schema requires present (``null`` where it is
nullable), the deprecated ``name`` kept as real payloads still carry it.

File URLs are signed when rendered, so each ``GET /messages/{mid}`` hands out fresh links, while
an update keeps the links it was made with (and they expire, as MAX's do).
"""

from __future__ import annotations

from typing import Any

from maxgate.fakemax.files import FileStore, StoredFile
from maxgate.fakemax.world import Attachment, Bot, Chat, Message, Person, World


class Renderer:
    """Renders records for one base URL (where the fake's links point)."""

    def __init__(self, world: World, files: FileStore, base_url: str, link_lifetime: float) -> None:
        self.world = world
        self.files = files
        self.base_url = base_url.rstrip("/")
        self.link_lifetime = link_lifetime

    def user(self, person: Person, *, photo: bool = False) -> dict[str, Any]:
        """A ``User``; with ``photo`` a ``UserWithPhoto``, as chat events and members carry."""
        full = " ".join(part for part in (person.first_name, person.last_name) if part)
        if photo:
            avatar = f"{self.base_url}/i?r=avatar{person.user_id}"
            return {**self.user(person), "avatar_url": avatar, "full_avatar_url": avatar + "full"}
        return {
            "user_id": person.user_id,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "username": person.username,
            "is_bot": person.is_bot,
            "last_activity_time": person.last_activity_time,
            "name": full,
        }

    def bot_info(self, bot: Bot) -> dict[str, Any]:
        """A ``BotInfo`` (``GET /me``)."""
        return {
            **self.user(bot.person, photo=True),
            "description": bot.description,
            "commands": None,
        }

    def link(self, stored: StoredFile) -> str:
        """A fresh signed download URL of ``stored``."""
        return self.files.link(self.base_url, stored, self.link_lifetime)

    def attachment(self, item: Attachment) -> dict[str, Any]:
        """An ``Attachment`` of a received or sent message."""
        stored = item.file
        if item.kind == "image" and stored is not None:
            payload = {"photo_id": stored.photo_id, "token": stored.token, "url": self.link(stored)}
            return {"type": "image", "payload": payload}
        if item.kind == "image":  # sent by URL: the fake keeps the URL, fetches nothing
            return {"type": "image", "payload": dict(item.fields)}
        if item.kind in ("video", "audio", "file") and stored is not None:
            media: dict[str, Any] = {
                "type": item.kind,
                "payload": {"url": self.link(stored), "token": stored.token},
            }
            if item.kind == "video":
                media.update(thumbnail=None, width=640, height=360, duration=1)
            elif item.kind == "audio":
                media["transcription"] = None
            else:
                media.update(filename=stored.filename, size=stored.size)
            return media
        if item.kind == "sticker":
            code = item.fields["code"]
            payload = {"url": f"{self.base_url}/getSmile?smileId={code}", "code": code}
            return {"type": "sticker", "payload": payload, "width": 128, "height": 128}
        if item.kind == "location":
            return {"type": "location", **item.fields}
        if item.kind == "contact":
            return {"type": "contact", "payload": dict(item.fields)}
        return {"type": item.kind, **item.fields}

    def body(self, message: Message) -> dict[str, Any]:
        """A ``MessageBody``."""
        return {
            "mid": message.mid,
            "seq": message.seq,
            "text": message.text,
            "attachments": [self.attachment(a) for a in message.attachments] or None,
            "markup": message.markup,
        }

    def message(self, message: Message) -> dict[str, Any]:
        """A ``Message``."""
        chat = self.world.chats[message.chat_id]
        sender = self.world.people[message.sender_id]
        rendered: dict[str, Any] = {
            "sender": self.user(sender),
            "recipient": {
                "chat_id": chat.chat_id,
                "chat_type": chat.type,
                "user_id": chat.other_party(message.sender_id),
            },
            "timestamp": message.timestamp,
            "link": None,
            "body": self.body(message),
            "stat": None,
            "url": None,
        }
        if message.link is not None:
            kind, mid = message.link
            linked = self.world.messages.get(mid)
            if linked is not None:
                rendered["link"] = {
                    "type": kind,
                    "sender": self.user(self.world.people[linked.sender_id]),
                    "chat_id": linked.chat_id,
                    "message": self.body(linked),
                }
        return rendered

    def chat(self, chat: Chat, viewer: Bot) -> dict[str, Any]:
        """A ``Chat`` as ``viewer`` sees it."""
        other = chat.other_party(viewer.user_id)
        pinned = self.world.messages.get(chat.pinned) if chat.pinned else None
        return {
            "chat_id": chat.chat_id,
            "type": chat.type,
            "status": chat.status,
            "title": chat.title,
            "icon": None,
            "last_event_time": chat.last_event_time,
            "participants_count": len(chat.members),
            "owner_id": chat.owner_id,
            "participants": None,
            "is_public": False,
            "link": None,
            "description": chat.description,
            "dialog_with_user": self.user(self.world.people[other], photo=True) if other else None,
            "messages_count": len(self.world.chat_messages(chat.chat_id)),
            "chat_message_id": None,
            "pinned_message": self.message(pinned) if pinned else None,
        }

    def member(self, chat: Chat, user_id: int) -> dict[str, Any]:
        """A ``ChatMember``."""
        person = self.world.people[user_id]
        admin = user_id in chat.admins or user_id == chat.owner_id
        return {
            **self.user(person, photo=True),
            "description": None,
            "last_access_time": chat.members[user_id],
            "is_owner": user_id == chat.owner_id,
            "is_admin": admin,
            "join_time": chat.members[user_id],
            "permissions": ["read_all_messages", "write", "add_remove_members"] if admin else None,
            "alias": None,
        }
