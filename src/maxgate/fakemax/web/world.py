"""The web fake's world: accounts, sessions, QR logins, dialogs, messages and files.

Nothing here knows WebSockets or HTTP. ``handlers.py`` reads and changes it for a connected
client; the control methods of ``WebFake`` change it for a test. Ids follow what PyMax's
tests and real payloads show: a message id is ``(time_ms << 16) | n`` (18 digits), and the
dialog of two users has the chat id ``a ^ b`` (``UserService.get_chat_id`` in
``pymax/api/users/service.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
import time
import uuid

FILE_KINDS = ("file", "photo", "video", "audio")


def now_ms() -> int:
    """The platform's clock: milliseconds since the epoch."""
    return int(time.time() * 1000)


@dataclasses.dataclass
class Person:
    """A MAX user: the account a client logs into, or someone who writes to it."""

    user_id: int
    first_name: str
    last_name: str | None = None
    phone: int | None = None
    password: str | None = dataclasses.field(default=None, repr=False)  # 2FA, accounts only
    hint: str | None = None
    contacts: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class Session:
    """A login token handed to a device; ``revoked`` once MAX ends it."""

    token: str = dataclasses.field(repr=False)
    account_id: int
    device_id: str
    revoked: bool = False


@dataclasses.dataclass
class QrLogin:
    """One QR login: a link the phone scans, then the login it allows."""

    track_id: str
    link: str
    expires_at: int  # ms
    scanned_by: int | None = None  # the account that scanned it
    used: bool = False


@dataclasses.dataclass
class PasswordChallenge:
    """The 2FA step after a QR scan of an account with a password."""

    track_id: str
    account_id: int
    attempts: int = 0


@dataclasses.dataclass
class StoredFile:
    """A file's bytes and what MAX says about it."""

    file_id: int
    kind: str  # file | photo | video | audio
    name: str
    data: bytes = dataclasses.field(repr=False)
    token: str = dataclasses.field(repr=False)
    width: int = 640
    height: int = 360
    duration: int = 1000  # ms, video and audio
    ready: bool = True
    deleted: bool = False


@dataclasses.dataclass
class Upload:
    """An upload slot (FILE_UPLOAD, VIDEO_UPLOAD, PHOTO_UPLOAD): one file's bytes, once."""

    slot: str
    file: StoredFile
    account_id: int
    done: bool = False


@dataclasses.dataclass
class Message:
    """A message in a chat."""

    message_id: int
    chat_id: int
    sender: int
    text: str
    time: int
    files: list[StoredFile]
    cid: int | None = None
    reply_to: int | None = None
    edited: bool = False
    removed: bool = False


@dataclasses.dataclass
class Chat:
    """A dialog of two people (the only kind the fake has yet)."""

    chat_id: int
    owner: int
    members: dict[int, int]  # user id -> join time (ms)
    created: int
    messages: list[Message] = dataclasses.field(default_factory=list)
    mark: int = 0  # the owner's read mark (ms)

    def other(self, user_id: int) -> int:
        """The member who is not ``user_id``."""
        return next((member for member in self.members if member != user_id), user_id)


@dataclasses.dataclass
class Link:
    """A temporary download URL's record: which file, until when."""

    file_id: int
    expires_at: float  # time.time()


class World:
    """Every record of the web fake."""

    def __init__(self, *, qr_ttl_seconds: float = 60.0) -> None:
        self.qr_ttl_seconds = qr_ttl_seconds
        self.people: dict[int, Person] = {}
        self.sessions: dict[str, Session] = {}
        self.qr_logins: dict[str, QrLogin] = {}
        self.challenges: dict[str, PasswordChallenge] = {}
        self.chats: dict[int, Chat] = {}
        self.files: dict[int, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.links: dict[str, Link] = {}
        self._people_ids = itertools.count(10_000_001)
        self._file_ids = itertools.count(3_000_000_001)
        self._message_n = itertools.count(1)
        self._last_message_id = 0
        self.account = self.add_person("Fake", "Account", phone=79990000001)

    # --- people ----------------------------------------------------------------------------

    def add_person(
        self, first_name: str, last_name: str | None = None, *, phone: int | None = None
    ) -> Person:
        """A new MAX user (a phone number is made up when none is given)."""
        user_id = next(self._people_ids)
        person = Person(user_id, first_name, last_name, phone or 79000000000 + user_id % 10**9)
        self.people[user_id] = person
        return person

    def by_phone(self, phone: str) -> Person | None:
        """The user with this phone number (digits only are compared)."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        return next((p for p in self.people.values() if str(p.phone) == digits), None)

    # --- login -----------------------------------------------------------------------------

    def new_qr(self) -> QrLogin:
        """A fresh QR login (GET_QR); the link has the shape web.max.ru shows."""
        track_id = str(uuid.uuid4())
        qr = QrLogin(
            track_id=track_id,
            link=f"https://max.ru/:auth/{uuid.uuid4()}",
            expires_at=now_ms() + int(self.qr_ttl_seconds * 1000),
        )
        self.qr_logins[track_id] = qr
        return qr

    def qr_by_link(self, link: str) -> QrLogin | None:
        """The QR login a scanned link belongs to."""
        return next((qr for qr in self.qr_logins.values() if qr.link == link), None)

    def new_session(self, account_id: int, device_id: str) -> Session:
        """A login token for ``device_id``."""
        session = Session(secrets.token_urlsafe(32), account_id, device_id)
        self.sessions[session.token] = session
        return session

    def new_challenge(self, account_id: int) -> PasswordChallenge:
        """The 2FA step of a QR login."""
        challenge = PasswordChallenge(str(uuid.uuid4()), account_id)
        self.challenges[challenge.track_id] = challenge
        return challenge

    # --- chats and messages ----------------------------------------------------------------

    def dialog(self, a: int, b: int) -> Chat:
        """The dialog of ``a`` and ``b``, created on first use; its id is ``a ^ b``."""
        chat_id = a ^ b
        chat = self.chats.get(chat_id)
        if chat is None:
            created = now_ms()
            chat = Chat(chat_id, owner=a, members={a: created, b: created}, created=created)
            self.chats[chat_id] = chat
        return chat

    def next_message_id(self) -> int:
        """``(time_ms << 16) | n``, always increasing."""
        candidate = (now_ms() << 16) | (next(self._message_n) & 0xFFFF)
        self._last_message_id = max(candidate, self._last_message_id + 1)
        return self._last_message_id

    def add_message(
        self,
        chat: Chat,
        sender: int,
        text: str,
        files: list[StoredFile] | None = None,
        *,
        cid: int | None = None,
        reply_to: int | None = None,
    ) -> Message:
        """A message appended to ``chat``."""
        message = Message(
            message_id=self.next_message_id(),
            chat_id=chat.chat_id,
            sender=sender,
            text=text,
            time=now_ms(),
            files=files or [],
            cid=cid,
            reply_to=reply_to,
        )
        chat.messages.append(message)
        return message

    def message(self, chat_id: int, message_id: int) -> Message | None:
        """One message of a chat, unless removed."""
        chat = self.chats.get(chat_id)
        found = (
            next((m for m in chat.messages if m.message_id == message_id), None) if chat else None
        )
        return found if found is not None and not found.removed else None

    # --- files -----------------------------------------------------------------------------

    def add_file(self, kind: str, name: str, data: bytes, *, ready: bool = True) -> StoredFile:
        """A file of ``kind`` (file, photo, video, audio) holding ``data``."""
        if kind not in FILE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FILE_KINDS)}, not {kind!r}")
        stored = StoredFile(
            file_id=next(self._file_ids),
            kind=kind,
            name=name,
            data=data,
            token=secrets.token_urlsafe(24),
            ready=ready,
        )
        self.files[stored.file_id] = stored
        return stored

    def new_upload(self, kind: str, account_id: int) -> Upload:
        """An upload slot for one file of ``kind``; the file is empty and not ready."""
        upload = Upload(
            secrets.token_urlsafe(16), self.add_file(kind, "", b"", ready=False), account_id
        )
        self.uploads[upload.slot] = upload
        return upload

    def new_link(self, stored: StoredFile, lifetime_seconds: float) -> str:
        """A temporary download token for ``stored`` (the URL path's last part)."""
        token = secrets.token_urlsafe(18)
        self.links[token] = Link(stored.file_id, time.time() + lifetime_seconds)
        return token

    def resolve_link(self, token: str) -> StoredFile | str:
        """The file a download token names, or why not: ``"expired"`` or ``"gone"``."""
        link = self.links.get(token)
        if link is None or link.expires_at <= time.time():
            return "expired"
        stored = self.files.get(link.file_id)
        if stored is None or stored.deleted:
            return "gone"
        return stored

    def expire_links(self, file_id: int | None = None) -> int:
        """End every download URL handed out so far (of one file, or all); how many."""
        count = 0
        for link in self.links.values():
            if (file_id is None or link.file_id == file_id) and link.expires_at > time.time():
                link.expires_at = 0.0
                count += 1
        return count

    def delete_file(self, file_id: int) -> None:
        """MAX has lost the file: links answer 404, FILE_DOWNLOAD and VIDEO_PLAY an error."""
        stored = self.files.get(file_id)
        if stored is None:
            raise KeyError(f"no file {file_id}")
        stored.deleted = True
        stored.data = b""
