"""The MAX Bot API connector (kind ``maxbot``): each instance is one bot, known by its token.

Receiving is a long poll per bot (``GET /updates``) whose marker is kept in the database after
the updates before it are journaled — a restart, even ``kill -9``, neither loses an update nor
journals one twice (the journal ignores an idMessage it has). ``run`` (a worker of the serving
process) starts a bot's poll when its instance appears (made by this process, the CLI or
another replica) and stops it when the instance is deleted; of several worker processes or
replicas, only the one holding a bot's lease (``maxbot_bots.owner``) runs it. A 401 turns the state
``notAuthorized`` (with its notification) and the bot waits: ``reboot`` or a recheck every
``REVOKED_RECHECK`` seconds tries again.

Files: each received file's reference is its message's ``mid``, the attachment's place and the
URL it came with. MAX's URLs are signed and expire; an expired one, or one MAX refuses (403,
404, 410), is resolved again through ``GET /messages/{mid}`` (videos through ``GET
/videos/{token}``) and tried once more; when MAX no longer has the message or the file,
``UpstreamFileGone``. Sending uploads the file streamed (``POST /uploads`` → the upload URL)
and posts the message, ``attachment.not.ready`` retried. Every call of one token shares one
``RateWindow`` (≤ ``rps`` a second).

Over 500 lines because it is one adapter: the per-bot runner (poll, webhook subscription,
updates to the sink) and the ``Upstream`` methods share the runner's state; the calls and the
update mapping already live beside it (``api.py``, ``updates.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

from maxgate.domain.messenger import ChatInfo, Contact, ContactInfo, InboundMessage, InboundSink
from maxgate.domain.records import FileRecord, Instance, Message
from maxgate.errors import (
    OutboundError,
    OutboundStatus,
    StoreError,
    UpstreamError,
    UpstreamFileGone,
)
from maxgate.net.client import OutboundClient
from maxgate.net.http import fetch
from maxgate.store import maxbot as store
from maxgate.store import messages as message_rows
from maxgate.store.database import Database
from maxgate.store.maxbot import Bot
from maxgate.upstream.maxbot.api import (
    DEFAULT_BASE_URL,
    BotApi,
    BotApiError,
    RateWindow,
    TokenRevoked,
)
from maxgate.upstream.maxbot.formatting import new_body_text
from maxgate.upstream.maxbot.updates import FileRef, messages_of, recipient

log = logging.getLogger(__name__)

CAPABILITIES = frozenset(
    {
        "sendMessage",
        "sendFileByUpload",
        "sendFileByUrl",
        "reboot",
        "sendLocation",
        "sendContact",
        "editMessage",
        "deleteMessage",
        "sendTyping",
        "forwardMessages",
    }
)
"""What a bot can do among the messenger methods: no QR or phone login, no phone lookup
(``checkAccount``), no contacts or their pictures, no read marks (MAX's schema lists the action
``mark_seen``, but ``maxgate fakemax`` refuses it and nothing says what MAX does with it), no
new groups (docs/max-bot.md)."""

SCAN_INTERVAL = 2.0  # seconds between looks for maxbot instances made or deleted elsewhere
LEASE = 15.0  # seconds a process's hold on a bot lives unless renewed (every LEASE / 3)
REVOKED_RECHECK = 60.0  # seconds between checks of a revoked token
RESUBSCRIBE_CHECK = 600.0  # seconds between checks that MAX still has the webhook subscription
WEBHOOK_PATH = "/maxbot/webhook/"  # + idInstance: where MAX delivers a bot's updates
FAILURE_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)  # after a failed poll, growing
GONE_STATUSES = frozenset({400, 401, 403, 404, 410})  # a file URL MAX no longer honours
VIDEO_QUALITIES = ("mp4_1080", "mp4_720", "mp4_480", "mp4_360", "mp4_240", "mp4_144")
IMAGE_TYPES = frozenset({"jpeg", "png", "gif", "tiff", "bmp", "heic", "heif"})
VIDEO_TYPES = frozenset({"mp4", "quicktime", "x-matroska", "webm"})


def upload_kind(mime_type: str) -> str:
    """The ``POST /uploads`` type for a file: MAX's image and video formats as such, any
    audio as audio, the rest as a file (docs/max-bot.md)."""
    major, _, minor = mime_type.lower().partition("/")
    if major == "image" and minor in IMAGE_TYPES:
        return "image"
    if major == "video" and minor in VIDEO_TYPES:
        return "video"
    if major == "audio":
        return "audio"
    return "file"


def _expired(url: str) -> bool:
    """Whether a MAX file URL's ``expires=`` (milliseconds) has passed."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    try:
        return int(query["expires"][0]) <= time.time() * 1000
    except (KeyError, ValueError, IndexError):
        return False


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Bot:
    """One instance's bot while this process runs it: its API, state and poll task."""

    def __init__(self, owner: MaxBot, bot: Bot) -> None:
        self.owner = owner
        self.instance_id = bot.instance_id
        self.token_key = _token_key(bot.token)
        self.api = owner.api_for(bot.token)
        self.state = bot.state
        self.bot_user_id = bot.bot_user_id
        self.marker = bot.marker
        self.webhook_url = bot.webhook_url
        self.webhook_secret = bot.webhook_secret
        self.group_names: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        # This process's lease of the bot (MaxBot.sync takes and renews it): when taken, and
        # until when it holds, by this process's clock.
        self.leased_at = 0.0
        self.lease_until = 0.0

    def holds_lease(self) -> bool:
        """Whether this process's lease of the bot is still live: only then does it poll."""
        return time.time() < self.lease_until

    def __repr__(self) -> str:
        return f"<maxbot instance {self.instance_id} {self.state}>"

    async def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            await self.owner.sink.on_state(self.instance_id, state)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken (``reboot``)."""
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()

    async def run(self) -> None:
        """Receive the bot's updates (poll, or keep the webhook subscription) while this
        process holds its lease; ends when the lease is lost."""
        failures = 0
        while self.holds_lease():
            try:
                await self.identify()
                if self.owner.webhook_base:
                    await self.listen(f"{self.owner.webhook_base}{self.instance_id}")
                else:
                    await self.unsubscribe()
                    await self.poll()
            except TokenRevoked:
                log.warning("instance %d: MAX refused the bot token (revoked?)", self.instance_id)
                await self.set_state("notAuthorized")
                await self.pause(REVOKED_RECHECK)
            except (UpstreamError, StoreError) as exc:
                pause = FAILURE_PAUSES[min(failures, len(FAILURE_PAUSES) - 1)]
                failures += 1
                log.warning("instance %d: %s; again in %g s", self.instance_id, exc, pause)
                await self.pause(pause)
            else:
                failures = 0

    async def identify(self) -> None:
        me = await self.api.me()
        user_id = me.get("user_id")
        if isinstance(user_id, int) and user_id != self.bot_user_id:
            name = str(me.get("name") or me.get("first_name") or "")
            await store.set_identity(self.owner.db, self.instance_id, user_id, name)
            self.bot_user_id = user_id
        await self.set_state("authorized")

    async def listen(self, url: str) -> None:
        """Webhook mode: keep MAX's subscription to ``url`` (made again when MAX dropped it,
        as it does after hours of failed deliveries); updates arrive through ``deliver``."""
        if self.webhook_secret is None:  # one secret per bot, kept: every process shares it
            self.webhook_secret = secrets.token_urlsafe(32)  # the alphabet MAX allows
        while self.holds_lease():  # only the lease owner subscribes
            found = await self.api.call("GET", "/subscriptions")
            urls = [s.get("url") for s in found.get("subscriptions") or [] if isinstance(s, dict)]
            if url not in urls or self.webhook_url != url:
                body = {"url": url, "secret": self.webhook_secret}
                await self.api.call("POST", "/subscriptions", body=body)
                await store.set_webhook(self.owner.db, self.instance_id, url, self.webhook_secret)
                self.webhook_url = url
                log.info("instance %d: MAX delivers its updates to %s", self.instance_id, url)
            await self.pause(RESUBSCRIBE_CHECK)

    async def unsubscribe(self) -> None:
        """Polling mode: remove a subscription an earlier webhook mode made (polling gets
        nothing while one exists)."""
        if self.webhook_url is None:
            return
        await self.api.call("DELETE", "/subscriptions", query={"url": self.webhook_url})
        await store.set_webhook(self.owner.db, self.instance_id, None, None)
        self.webhook_url = self.webhook_secret = None

    async def poll(self) -> None:
        """Long-poll ``GET /updates`` while this process holds the bot's lease; the marker is
        written (only while the lease is still ours) after the updates before it are
        journaled."""
        owner = self.owner
        while self.holds_lease():
            page = await self.api.updates(self.marker, wait=owner.poll_timeout)
            for update in page.get("updates") or []:
                if isinstance(update, dict):
                    await self.handle(update)
            marker = page.get("marker")
            if isinstance(marker, int) and marker != self.marker:
                # Only now: every update before the marker is in the journal.
                if not await store.set_marker(
                    owner.db, self.instance_id, marker, owner=owner.lease_owner
                ):
                    # Stalled past the lease: another process polls now, from the marker it
                    # found; what this poll journaled, the journal ignores the second time.
                    log.warning("instance %d: another process took the bot over", self.instance_id)
                    self.lease_until = 0.0
                    return
                self.marker = marker

    async def handle(self, update: dict[str, Any]) -> None:
        """Report one update to the sink (messages journaled, edited or removed; chats
        registered). An update with no v3 counterpart is logged and skipped, so the marker
        still moves past it."""
        sink = self.owner.sink
        kind = update.get("update_type")
        if kind in ("message_created", "message_edited"):
            message = update.get("message") or {}
            group = str((message.get("recipient") or {}).get("chat_id", ""))
            found = messages_of(
                self.instance_id,
                self.bot_user_id,
                message,
                chat_name=self.group_names.get(group, ""),
            )
            if kind == "message_edited":
                # The edited message keeps its seq (idMessage); its first part holds the text.
                if found:
                    await sink.on_edit(found[0])
                return
            for inbound in found:
                await sink.on_message(inbound)
        elif kind == "message_removed":
            mid = update.get("message_id")
            if isinstance(mid, str):
                await sink.on_delete(self.instance_id, upstream_id=mid)
        elif kind == "bot_started":
            user = update.get("user") or {}
            if isinstance(user.get("user_id"), int):
                name = str(user.get("name") or user.get("first_name") or "")
                await sink.on_chat(self.instance_id, str(user["user_id"]), name=name, phone=0)
        elif kind in ("bot_added", "chat_title_changed"):
            chat_id = update.get("chat_id")
            if not isinstance(chat_id, int):
                return
            title = update.get("title")
            if not isinstance(title, str):
                try:
                    title = str((await self.api.chat(chat_id)).get("title") or "")
                except BotApiError:
                    title = ""
            self.group_names[str(chat_id)] = title
            await sink.on_chat(self.instance_id, str(chat_id), name=title, phone=0)
        elif kind in ("user_added", "user_removed", "bot_stopped", "bot_removed"):
            # GREEN-API v3 has no notification of group members joining or leaving (an open
            # request: https://green-api.com/en/forum/topic/21) nor of a contact blocking
            # the account; the chat stays in the journal as it is.
            log.info("instance %d: update %s has no v3 notification", self.instance_id, kind)
        else:
            log.debug("instance %d: update %s not journaled", self.instance_id, kind)


class MaxBot:
    """The adapter of every ``maxbot`` instance of a server.

    ``client`` gives the outbound client for MAX (made on first use; the runtime owns it).
    """

    kind = store.KIND
    lease_seconds: float = LEASE  # how long this process's hold on a bot lives unless renewed
    _owner: tuple[int, str] | None = None  # (pid, lease owner): a forked worker makes its own

    def __init__(
        self,
        db: Database,
        client: Callable[[], OutboundClient],
        *,
        base_url: str = DEFAULT_BASE_URL,
        rps: int = 30,
        poll_timeout: int = 30,
        timeout: float = 30.0,
        scan_interval: float = SCAN_INTERVAL,
        file_size_limit: int = 4 * 1024**3,
        webhook_base: str = "",
    ) -> None:
        self.db = db
        self._client = client
        self.base_url = base_url
        self.rps = rps
        self.poll_timeout = poll_timeout
        self.timeout = timeout
        self.scan_interval = scan_interval
        self.file_size_limit = file_size_limit
        # Webhook mode when set: MAX POSTs each bot's updates to webhook_base + idInstance.
        self.webhook_base = webhook_base
        self._sink: InboundSink | None = None
        self._bots: dict[int, _Bot] = {}
        self._windows: dict[str, RateWindow] = {}
        self._rescan = asyncio.Event()

    def __repr__(self) -> str:
        return f"MaxBot(base_url={self.base_url!r}, bots={len(self._bots)})"

    @property
    def sink(self) -> InboundSink:
        if self._sink is None:
            raise UpstreamError("the MAX bot connector was not started")
        return self._sink

    def capabilities(self) -> frozenset[str]:
        """What a bot can honour (``CAPABILITIES``)."""
        return CAPABILITIES

    def api_for(self, token: str) -> BotApi:
        """The calls of a token; every user of one token shares its rate window."""
        window = self._windows.setdefault(_token_key(token), RateWindow(self.rps))
        return BotApi(
            self._client(), token, base_url=self.base_url, window=window, timeout=self.timeout
        )

    async def verify(self, token: str) -> dict[str, Any]:
        """``GET /me`` with a token: who the bot is (``TokenRevoked`` for a wrong token)."""
        return await self.api_for(token).me()

    async def enroll(self, instance_id: int, token: str) -> None:
        """Keep a new instance's bot token; a started adapter begins polling at once.

        The poll starts from MAX's marker as of now: without a marker MAX hands out only the
        latest update, so whatever arrived between this and the first poll (a serving process
        finds an instance the CLI made only at its next scan) would be lost but the last."""
        marker = None
        try:
            found = (await self.api_for(token).updates(None, wait=0, limit=1)).get("marker")
            marker = found if isinstance(found, int) else None
        except UpstreamError as exc:
            log.warning("instance %d: no marker from MAX yet (%s)", instance_id, exc)
        await store.add(self.db, instance_id, token, marker=marker)
        self._rescan.set()

    async def start(self, sink: InboundSink) -> None:
        """Take the sink events go to. Polling is ``run``'s, a background worker of a
        serving process (a CLI command that opens the runtime polls nothing)."""
        self._sink = sink

    @property
    def lease_owner(self) -> str:
        """Who this adapter's bot leases belong to (``host/pid/token``, as the outbox's
        claims; a new one after a fork)."""
        if self._owner is None or self._owner[0] != os.getpid():
            host = socket.gethostname().replace("/", "_")[:64]
            self._owner = (os.getpid(), f"{host}/{os.getpid()}/{secrets.token_hex(8)}")
        return self._owner[1]

    async def run(self) -> None:
        """Run the bot of every live maxbot instance whose lease this process holds — one
        process of the server at a time per bot — watching for new and deleted instances and
        for leases let go or run out, until cancelled (then every bot stops and its lease is
        let go, so another process takes it over at once)."""
        try:
            while True:
                try:
                    await self.sync()
                except StoreError:
                    log.exception("could not list the maxbot instances; retrying")
                self._rescan.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self.scan_interval, self.lease_seconds / 3)):
                        await self._rescan.wait()
        finally:
            await self.stop()

    async def sync(self) -> None:
        """Run each live maxbot instance's bot whose lease this process takes or renews, and
        none for any other (deleted, or run by another process)."""
        live = {bot.instance_id: bot for bot in await store.live(self.db)}
        for instance_id in [i for i in self._bots if i not in live]:
            await self._stop_bot(self._bots.pop(instance_id), release=True)
        for bot in live.values():
            await self._lease_bot(bot)

    async def _lease_bot(self, bot: Bot) -> None:
        """Take or renew the lease of one live bot and run it; stop it when another process
        holds the lease."""
        instance_id = bot.instance_id
        running = self._bots.get(instance_id)
        if running is not None and running.token_key != _token_key(bot.token):
            await self._stop_bot(self._bots.pop(instance_id))  # a new token: a new runner
            running = None
        alive = running is not None and running.task is not None and not running.task.done()
        now = time.time()
        if running is not None and alive and now < running.leased_at + self.lease_seconds / 3:
            return  # renewed lately
        until = now + self.lease_seconds
        if not await store.take_lease(self.db, instance_id, self.lease_owner, now=now, until=until):
            if running is not None:
                log.info("instance %d: another process runs the bot now", instance_id)
                await self._stop_bot(self._bots.pop(instance_id))
            return
        if running is None or not alive:
            if running is not None:
                await self._stop_bot(running)
            # The marker as the last owner left it (it may have moved since ``live`` read it).
            running = _Bot(self, await store.get(self.db, instance_id) or bot)
            self._bots[instance_id] = running
            running.leased_at, running.lease_until = now, until
            running.task = asyncio.create_task(running.run(), name=f"maxgate-maxbot-{instance_id}")
        else:
            running.leased_at, running.lease_until = now, until

    async def _stop_bot(self, runner: _Bot, *, release: bool = False) -> None:
        """Stop a bot's runner; with ``release``, let its lease go for another process."""
        if runner.task is not None:
            runner.task.cancel()
            try:
                await runner.task
            except asyncio.CancelledError:
                pass
            except Exception:  # a bug in the runner: logged here, its task is gone anyway
                log.exception("instance %d: the bot's runner failed", runner.instance_id)
        runner.lease_until = 0.0
        if release:
            try:
                await store.release_lease(self.db, runner.instance_id, self.lease_owner)
            except StoreError:
                log.warning("instance %d: could not let the bot's lease go", runner.instance_id)

    async def stop(self) -> None:
        """Stop every bot and let its lease go (``run`` does too when cancelled)."""
        bots, self._bots = list(self._bots.values()), {}
        for runner in bots:
            await self._stop_bot(runner, release=True)

    async def deliver(self, instance_id: int, secret: str, body: bytes) -> int:
        """An update MAX POSTed to the webhook: journaled before the answer, which is its
        status — 200 once journaled; 403 for a wrong ``X-Max-Bot-Api-Secret`` or no bot in
        webhook mode with that id (the same answer: a guess learns nothing), 400 for a body
        that is no update (MAX then retries)."""
        runner = self._bots.get(instance_id)
        if runner is None:  # run by another process of this server
            bot = await store.get(self.db, instance_id)
            runner = _Bot(self, bot) if bot is not None else None
        expected = runner.webhook_secret if runner is not None else None
        if (
            runner is None
            or not expected
            or not hmac.compare_digest(secret.encode(), expected.encode())
        ):
            return 403
        try:
            update = json.loads(body)
        except ValueError:
            return 400
        if not isinstance(update, dict):
            return 400
        await runner.handle(update)
        return 200

    async def _api(self, instance_id: int) -> BotApi:
        running = self._bots.get(instance_id)
        if running is not None:
            return running.api
        bot = await store.get(self.db, instance_id)
        if bot is None:
            raise UpstreamError(f"instance {instance_id} has no bot token")
        return self.api_for(bot.token)

    async def send(
        self, instance: Instance, message: Message, body: AsyncIterator[bytes] | None
    ) -> str:
        """Send a text or file message; returns MAX's ``mid``."""
        api = await self._api(instance.id)
        try:
            to = recipient(message.chat_id)
        except ValueError:
            raise UpstreamError(f"chatId {message.chat_id} is not a MAX chat") from None
        text = message.caption if message.file else message.text
        new: dict[str, Any] = {"text": None, **new_body_text(text)}  # GREEN-API's marks → html
        if message.location is not None:  # MAX keeps only the coordinates
            place = message.location
            new["attachments"] = [
                {"type": "location", "latitude": place.latitude, "longitude": place.longitude}
            ]
        elif message.contact is not None:
            card = message.contact
            payload = {"name": card.display_name, "vcf_info": card.vcard, "vcf_phone": card.phone}
            new["attachments"] = [{"type": "contact", "payload": payload}]
        if message.file is not None and body is not None:
            file = message.file
            if file.size is None:
                raise UpstreamError("the file's size is not known")
            attachment = await api.upload(
                upload_kind(file.mime_type), file.file_name, file.mime_type, file.size, body
            )
            new["attachments"] = [attachment]
        if message.quoted_id:
            quoted = await message_rows.by_key(
                self.db, instance.id, message.chat_id, message.quoted_id
            )
            if quoted is not None and quoted.upstream_id:
                new["link"] = {"type": "reply", "mid": quoted.upstream_id}
        forwarded = await self._forwarded_mid(instance, message)
        if forwarded is not None:  # a forward: its content, and a link to MAX's original
            new["link"] = {"type": "forward", "mid": forwarded}
        sent = await api.send(to, new)
        mid = ((sent.get("message") or {}).get("body") or {}).get("mid")
        if not isinstance(mid, str):
            raise UpstreamError("MAX did not say the message's id")
        return mid

    # ---- service actions (maxgate.domain.messenger.MessageActions) ---------------------------

    async def edit_message(self, instance: Instance, message: Message, text: str) -> None:
        """``PUT /messages?message_id=<mid>`` with the new text."""
        api = await self._api(instance.id)
        mid = await self._mid(instance, message)
        body = {"text": text, **new_body_text(text)}
        await api.call("PUT", "/messages", query={"message_id": mid}, body=body)

    async def delete_message(self, instance: Instance, message: Message) -> None:
        """``DELETE /messages?message_id=<mid>``."""
        api = await self._api(instance.id)
        mid = await self._mid(instance, message)
        await api.call("DELETE", "/messages", query={"message_id": mid})

    async def _forwarded_mid(self, instance: Instance, message: Message) -> str | None:
        """MAX's id of the message a forward copies (forwardMessages records the original in
        the row's details); None for any other message, or an original MAX never had."""
        row = await message_rows.by_key(self.db, instance.id, message.chat_id, message.id_message)
        details = json.loads(row.details) if row is not None and row.details else {}
        original = details.get("forwarded")
        if not isinstance(original, dict):
            return None
        source = await message_rows.by_key(
            self.db, instance.id, str(original.get("chatId")), str(original.get("idMessage"))
        )
        return str(source.upstream_id) if source is not None and source.upstream_id else None

    async def _mid(self, instance: Instance, message: Message) -> str:
        """MAX's id of a message it accepted (``messages.upstream_id``)."""
        row = await message_rows.by_key(self.db, instance.id, message.chat_id, message.id_message)
        if row is None or not row.upstream_id:
            raise UpstreamError(f"message {message.id_message} has no MAX id")
        return str(row.upstream_id)

    async def read_chat(self, instance: Instance, chat_id: str, id_message: str | None) -> None:
        """Not among ``CAPABILITIES`` (see there)."""
        raise UpstreamError("a MAX bot cannot mark a chat read")

    async def send_typing(
        self, instance: Instance, chat_id: str, *, milliseconds: int, recording: bool
    ) -> None:
        """``typing_on`` (``sending_audio`` for recording); MAX shows it for a few seconds."""
        await self._action(instance, chat_id, "sending_audio" if recording else "typing_on")

    async def _action(self, instance: Instance, chat_id: str, action: str) -> None:
        api = await self._api(instance.id)
        chat = await self._dialog_chat(instance, api, chat_id)
        await api.call("POST", f"/chats/{chat}/actions", body={"action": action})

    async def _dialog_chat(self, instance: Instance, api: BotApi, chat_id: str) -> int:
        """The MAX ``chat_id`` of a v3 chatId: a group's is its own; a person's (their
        user_id) is the bot's dialog with them, the recipient of a message of that chat MAX
        has (``GET /messages/{mid}``; ``GET /chats`` is gone since June 2026)."""
        try:
            number = int(chat_id)
        except ValueError:
            raise UpstreamError(f"chatId {chat_id} is not a MAX chat") from None
        if number < 0:
            return number
        for row in await message_rows.history(self.db, instance.id, chat_id, 20):
            if row.upstream_id:
                found = await api.message(str(row.upstream_id))
                dialog = (found.get("recipient") or {}).get("chat_id")
                if isinstance(dialog, int):
                    return dialog
        raise UpstreamError(f"the bot has no message in its dialog with user {number}")

    async def contact_info(self, instance: Instance, chat_id: str) -> ContactInfo | None:
        """A bot has no address book (not among ``CAPABILITIES``)."""
        raise UpstreamError("a MAX bot cannot look a contact up")

    async def avatar(self, instance: Instance, chat_id: str) -> str:
        """Not among ``CAPABILITIES``."""
        raise UpstreamError("a MAX bot cannot read avatars")

    async def fetch_file(self, instance_id: int, file: FileRecord) -> AsyncIterator[bytes]:
        """Stream a received file from MAX, resolving its URL again when it has expired or MAX
        refuses it; ``UpstreamFileGone`` when MAX no longer has it."""
        if not file.upstream_ref:
            raise UpstreamError("the file has no MAX reference")
        try:
            ref = FileRef.parse(file.upstream_ref)
        except ValueError as exc:
            raise UpstreamError(str(exc)) from None
        api = await self._api(instance_id)
        client = self._client()
        resolved = _expired(ref.url)
        url = await self._resolve(api, ref) if resolved else ref.url
        while True:
            try:
                async with fetch(client, url, limit=self.file_size_limit, guard=client.guard) as (
                    _head,
                    chunks,
                ):
                    async for chunk in chunks:
                        yield chunk
                return
            except OutboundStatus as exc:
                if exc.status not in GONE_STATUSES:
                    raise UpstreamError(f"MAX's file server answered {exc.status}") from exc
                if resolved:
                    raise UpstreamFileGone(f"MAX no longer has the file ({exc.status})") from exc
            except OutboundError as exc:
                raise UpstreamError(f"fetching the file from MAX failed: {exc}") from exc
            url, resolved = await self._resolve(api, ref), True

    async def _resolve(self, api: BotApi, ref: FileRef) -> str:
        """A fresh URL of a file, from its message (or, for a video, its token)."""
        if ref.kind == "video" and ref.token:
            with contextlib.suppress(BotApiError):
                urls = (await api.video(ref.token)).get("urls") or {}
                for quality in VIDEO_QUALITIES:
                    if isinstance(urls.get(quality), str):
                        return str(urls[quality])
        try:
            message = await api.message(ref.mid)
        except BotApiError as exc:
            if exc.status == 404:
                raise UpstreamFileGone("MAX no longer has the message") from exc
            raise
        attachments = (message.get("body") or {}).get("attachments") or []
        if ref.index < len(attachments):
            attachment = attachments[ref.index]
            url = (attachment.get("payload") or {}).get("url")
            if attachment.get("type") == ref.kind and isinstance(url, str) and url:
                return url
        raise UpstreamFileGone("MAX's message no longer has the file")

    async def state(self, instance: Instance) -> str:
        """The bot's state as this process last saw it (else as stored)."""
        running = self._bots.get(instance.id)
        return running.state if running is not None else instance.state

    async def reboot(self, instance: Instance) -> None:
        """Check the token and poll again now (state ``starting``, then back)."""
        running = self._bots.get(instance.id)
        if running is None:
            self._rescan.set()
            return
        await running.set_state("starting")
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        running.task = asyncio.create_task(running.run(), name=f"maxgate-maxbot-{instance.id}")

    # What a bot cannot do: refused before a handler runs (capabilities); these answer a
    # caller that asks anyway.
    async def check_account(self, phone: int) -> str | None:
        raise UpstreamError("a MAX bot cannot look up a phone number")

    async def resolve_phone(self, instance: Instance, phone: int) -> str | None:
        raise UpstreamError("a MAX bot cannot look up a phone number")

    async def logout(self, instance: Instance) -> None:
        raise UpstreamError("a MAX bot cannot log out (delete the instance, or revoke the token)")

    async def qr(self, instance: Instance) -> bytes | None:
        raise UpstreamError("a MAX bot cannot log in by QR code")

    async def send_password(self, instance: Instance, password: str) -> bool:
        raise UpstreamError("a MAX bot has no login password")

    async def contacts(self, instance: Instance) -> list[Contact]:
        raise UpstreamError("a MAX bot has no contacts")

    async def chats(self, instance: Instance) -> list[ChatInfo]:
        raise UpstreamError("a MAX bot cannot list its chats (MAX removed GET /chats)")

    async def history(self, instance: Instance, chat_id: str, since: int) -> list[InboundMessage]:
        raise UpstreamError("a MAX bot's history is not read back yet")
