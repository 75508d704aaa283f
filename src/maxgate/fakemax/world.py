"""The fake's world: bots, users, chats, messages and each bot's update log.

Nothing here knows HTTP. The Bot API routes (``botapi.py``, ``messages.py``, ``chats.py``)
read and change it for a bot; the control API (``control.py``) changes it for a fake user; both
get the same records, so what a user sends is what the bot receives.

Ids follow what real payloads show: dialogs have positive chat ids, groups negative ones, and
``mid`` is ``"mid."`` + 16 hex digits of the chat id + 16 of ``seq``, where ``seq >> 16`` is
the message's time in milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import Any

from maxgate.fakemax.files import StoredFile


def now_ms() -> int:
    """The platform's clock: milliseconds since the epoch, UTC."""
    return int(time.time() * 1000)


@dataclasses.dataclass
class Person:
    """A MAX account: a fake user or a bot."""

    user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    is_bot: bool = False
    last_activity_time: int = dataclasses.field(default_factory=now_ms)


@dataclasses.dataclass
class Subscription:
    """A webhook subscription (``POST /subscriptions``)."""

    url: str
    time: int
    update_types: list[str] | None
    secret: str | None
    version: str | None


@dataclasses.dataclass
class Bot:
    """A bot, its token and what it has not yet been handed."""

    person: Person
    token: str
    revoked: bool = False
    description: str | None = None
    log: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # update by marker - 1
    committed: int = 1  # the marker below which every update counts as read
    subscriptions: list[Subscription] = dataclasses.field(default_factory=list)
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    @property
    def user_id(self) -> int:
        return self.person.user_id


@dataclasses.dataclass
class Chat:
    """A dialog (one user and one bot) or a group chat."""

    chat_id: int
    type: str  # dialog | chat | channel
    title: str | None
    owner_id: int | None
    members: dict[int, int]  # user id -> join time (ms)
    admins: set[int] = dataclasses.field(default_factory=set)
    status: str = "active"
    last_event_time: int = dataclasses.field(default_factory=now_ms)
    pinned: str | None = None  # mid
    description: str | None = None

    def other_party(self, user_id: int) -> int | None:
        """In a dialog, the member who is not ``user_id``."""
        others = [member for member in self.members if member != user_id]
        return others[0] if self.type == "dialog" and others else None


@dataclasses.dataclass
class Attachment:
    """An attachment as stored: a file for the media kinds, the fields for the rest."""

    kind: str  # image | video | audio | file | sticker | contact | location | share | …
    file: StoredFile | None = None
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Message:
    """A message in a chat, as the platform keeps it."""

    mid: str
    seq: int
    chat_id: int
    sender_id: int
    timestamp: int
    text: str | None
    attachments: list[Attachment]
    link: tuple[str, str] | None = None  # (forward | reply, mid)
    markup: list[dict[str, Any]] | None = None
    removed: bool = False


class World:
    """Every record of the fake, and the rules that produce updates."""

    def __init__(self) -> None:
        self.people: dict[int, Person] = {}
        self.bots: dict[int, Bot] = {}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[str, Message] = {}
        self._user_ids = itertools.count(200_000_001)
        self._bot_ids = itertools.count(900_000_001)
        self._dialog_ids = itertools.count(80_000_001)
        self._group_ids = itertools.count(70_000_000_000_001)
        self._last_seq = 0
        self.callbacks: dict[str, str] = {}  # callback_id -> mid (POST /answers)
        self.on_update: list[Any] = []  # callbacks (bot, update) -> None, for webhooks

    # --- accounts --------------------------------------------------------------------------

    def add_bot(self, token: str, *, first_name: str = "Fake bot", username: str = "") -> Bot:
        """A bot reachable with ``token``."""
        user_id = next(self._bot_ids)
        person = Person(user_id, first_name, None, username or f"fake{user_id}_bot", is_bot=True)
        bot = Bot(person=person, token=token)
        self.people[user_id] = person
        self.bots[user_id] = bot
        return bot

    def bot_by_token(self, token: str) -> Bot | None:
        """The bot a token belongs to (revoked or not)."""
        return next((bot for bot in self.bots.values() if bot.token == token), None)

    def add_user(self, first_name: str, last_name: str | None, username: str | None) -> Person:
        """A fake user account."""
        person = Person(next(self._user_ids), first_name, last_name, username)
        self.people[person.user_id] = person
        return person

    # --- chats -----------------------------------------------------------------------------

    def dialog(self, bot: Bot, user_id: int) -> Chat:
        """The dialog between ``bot`` and a user, made on first use."""
        for chat in self.chats.values():
            if chat.type == "dialog" and set(chat.members) == {bot.user_id, user_id}:
                return chat
        joined = now_ms()
        chat = Chat(next(self._dialog_ids), "dialog", None, None, {user_id: joined})
        chat.members[bot.user_id] = joined
        self.chats[chat.chat_id] = chat
        return chat

    def add_group(self, title: str, owner_id: int, members: list[int]) -> Chat:
        """A group chat (negative id) owned by ``owner_id``."""
        joined = now_ms()
        chat = Chat(-next(self._group_ids), "chat", title, owner_id, {owner_id: joined})
        chat.admins.add(owner_id)
        for member in members:
            chat.members.setdefault(member, joined)
        self.chats[chat.chat_id] = chat
        return chat

    def bots_in(self, chat: Chat) -> list[Bot]:
        """The bots that are members of ``chat``."""
        return [self.bots[m] for m in chat.members if m in self.bots]

    # --- messages --------------------------------------------------------------------------

    def _next_seq(self, timestamp: int) -> int:
        self._last_seq = max(self._last_seq + 1, timestamp << 16)
        return self._last_seq

    def add_message(
        self,
        chat: Chat,
        sender_id: int,
        text: str | None,
        attachments: list[Attachment],
        *,
        link: tuple[str, str] | None = None,
        markup: list[dict[str, Any]] | None = None,
    ) -> Message:
        """A new message in ``chat`` (no update is produced here)."""
        timestamp = now_ms()
        seq = self._next_seq(timestamp)
        mid = f"mid.{chat.chat_id & 0xFFFFFFFFFFFFFFFF:016x}{seq:016x}"
        message = Message(mid, seq, chat.chat_id, sender_id, timestamp, text, attachments)
        message.link, message.markup = link, markup
        self.messages[mid] = message
        chat.last_event_time = timestamp
        return message

    def new_callback(self, mid: str) -> str:
        """A callback id for a button pressed under message ``mid``."""
        callback_id = f"cb.{len(self.callbacks) + 1:08d}.{mid[-8:]}"
        self.callbacks[callback_id] = mid
        return callback_id

    def chat_messages(self, chat_id: int) -> list[Message]:
        """The chat's messages that are not removed, newest first."""
        found = [m for m in self.messages.values() if m.chat_id == chat_id and not m.removed]
        return sorted(found, key=lambda m: m.seq, reverse=True)

    # --- updates ---------------------------------------------------------------------------

    def push(self, bot: Bot, update: dict[str, Any]) -> None:
        """Hand ``update`` to ``bot``: to its webhooks if it has any, else to its poll log."""
        update.setdefault("timestamp", now_ms())
        bot.log.append(update)
        if bot.subscriptions:
            bot.committed = len(bot.log) + 1  # delivered by webhook, never polled
        for callback in self.on_update:
            callback(bot, update)
        bot.arrived.set()
        bot.arrived = asyncio.Event()

    def pending(
        self, bot: Bot, marker: int | None, limit: int, types: set[str] | None
    ) -> tuple[list[dict[str, Any]], int]:
        """The updates a poll gets, and the marker it answers.

        A ``marker`` commits every update before it. Without one, only the last uncommitted
        update is handed out (the 2026 documentation of ``GET /updates``)."""
        if marker is not None:
            bot.committed = max(bot.committed, min(marker, len(bot.log) + 1))
        start = bot.committed
        if marker is None and len(bot.log) >= start:
            start = len(bot.log)
        taken: list[dict[str, Any]] = []
        position = start
        while position <= len(bot.log) and len(taken) < limit:
            update = bot.log[position - 1]
            if types is None or update["update_type"] in types:
                taken.append(update)
            position += 1
        return taken, position
