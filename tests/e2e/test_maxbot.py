"""The ``maxbot`` upstream end to end: a real ``maxgate serve`` whose instances are bots of a real
``maxgate fakemax`` (both on 127.0.0.1), driven through GREEN-API's official SDK and the v3 API
on one side and the fake's control API (the users) on the other.

Sending (text, every way of sending a file, replies) and receiving (every kind of file) with
the bytes checked by sha256; locations, contacts, edits and removals in their v3 shapes; files
fetched again after retention eviction and after MAX's signed URLs expired; the 500 of a file
MAX no longer has; the long-poll marker across ``kill -9``; a revoked token; and a 500-message
burst that stays within MAX's 30 requests per second.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maxgate.fakemax.transfer import PIXEL
from tests.e2e.conftest import Server, maxgate, wait_until
from tests.e2e.maxbot_support import (
    V3,
    Fake,
    Queue,
    User,
    bot_instance,
    fakemax,
    file_id_of,
    file_server,
    sdk,
    serve_maxbot,
    sha256,
)

# The SDK's sendFileByUpload leaves its file open (see test_sdk.py); that warning is theirs.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# One bot per test, so that no test reads another's updates, queue or rate counters.
SDK, INBOUND, KINDS, RETENTION, MARKER, REVOKE, BURST = (
    f"{name}-bot-token"
    for name in ("sdk", "inbound", "kinds", "retention", "marker", "revoke", "burst")
)
TOKENS = (SDK, INBOUND, KINDS, RETENTION, MARKER, REVOKE, BURST)


@pytest.fixture(autouse=True)
def _collect_sdk_garbage() -> Iterator[None]:
    """Collect the SDK's unclosed files while this module's warning filters apply."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    """One fake MAX for the module; uploads stay "processing" for 0.3 s (attachment.not.ready)."""
    root = tmp_path_factory.mktemp("fakemax")
    with fakemax(root, "--tokens", ",".join(TOKENS), "--not-ready-seconds", "0.3") as running:
        yield running


@pytest.fixture(scope="module")
def gateway(fake: Fake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = serve_maxbot(tmp_path_factory.mktemp("gateway") / "data", fake)
    yield srv
    srv.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def attach(kind: str, name: str, data: bytes) -> dict[str, Any]:
    """An attachment a fake user sends: a file of ``kind`` with its bytes inline."""
    return {"type": kind, "filename": name, "content_base64": b64(data)}


def incoming(queue: Queue) -> list[dict[str, Any]]:
    return queue.of("incomingMessageReceived")


def files_by_state(server: Server, instance_id: int) -> dict[str, int]:
    rows = json.loads(maxgate("files", "stats", "--json", data_dir=server.data_dir, env=server.env))
    return {r["state"]: r["files"] for r in rows if r["instance_id"] == instance_id}


# --- 1. sending ---------------------------------------------------------------------------


def test_sdk_sends_text_files_and_a_reply_to_a_fake_user(
    fake: Fake, gateway: Server, tmp_path: Path
) -> None:
    info = bot_instance(gateway, SDK)
    api, v3 = sdk(gateway, info), V3(gateway, info)
    queue = Queue(v3)
    user = fake.user(SDK)
    chat = user.v3_chat

    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 " + os.urandom(300_000))
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(20_000))
    served = tmp_path / "served"
    served.mkdir()
    clip = served / "clip.mp4"
    clip.write_bytes(os.urandom(150_000))
    voice = tmp_path / "voice.ogg"
    voice.write_bytes(b"OggS" + os.urandom(40_000))

    # The user asks first, so that the bot has something to reply to.
    question = user.says("which report?")
    queue.until(lambda seen: len(incoming(queue)) >= 1)
    question_id = str(question["body"]["seq"])
    assert incoming(queue)[0]["idMessage"] == question_id

    ids: list[str] = []
    sent = api.sending.sendMessage(chat, "this one", quotedMessageId=question_id)
    assert sent.code == 200, sent.error
    ids.append(sent.data["idMessage"])
    sent = api.sending.sendFileByUpload(chat, str(report), caption="Q3")
    assert sent.code == 200, sent.error
    ids.append(sent.data["idMessage"])
    sent = api.sending.sendFileByUpload(chat, str(photo))
    assert sent.code == 200, sent.error
    ids.append(sent.data["idMessage"])
    with file_server(served) as files:
        sent = api.sending.sendFileByUrl(chat, f"{files}/clip.mp4", "clip.mp4", caption="watch")
    assert sent.code == 200, sent.error
    ids.append(sent.data["idMessage"])
    uploaded = api.sending.uploadFile(str(voice))
    assert uploaded.code == 200, uploaded.error
    sent = api.sending.sendFileByUrl(chat, uploaded.data["urlFile"], "voice.ogg")
    assert sent.code == 200, sent.error
    ids.append(sent.data["idMessage"])

    def five() -> list[dict[str, Any]] | None:
        found = user.received()
        return found if len(found) >= 5 else None

    got = wait_until(five, timeout=60)
    assert len(got) == 5
    text, doc, image, video, audio = got
    assert text["body"]["text"] == "this one"
    assert text["link"]["type"] == "reply"
    assert text["link"]["message"]["mid"] == question["body"]["mid"]

    def only(message: dict[str, Any]) -> dict[str, Any]:
        attachments = message["body"]["attachments"]
        assert len(attachments) == 1, attachments
        found: dict[str, Any] = attachments[0]
        return found

    assert doc["body"]["text"] == "Q3"
    assert (only(doc)["type"], only(doc)["filename"]) == ("file", "report.pdf")
    assert only(doc)["size"] == report.stat().st_size
    assert only(image)["type"] == "image" and image["body"]["text"] is None
    assert only(video)["type"] == "video" and video["body"]["text"] == "watch"
    assert only(audio)["type"] == "audio"
    for message, path in ((doc, report), (image, photo), (video, clip), (audio, voice)):
        body = fake.file_bytes(only(message)["payload"]["url"])
        assert (len(body), sha256(body)) == (path.stat().st_size, sha256(path.read_bytes()))

    # maxgate reports each as sent, in the queue and in the journal, with MAX's message ids.
    queue.until(lambda seen: all("sent" in queue.statuses(i) for i in ids), timeout=30)
    journal = {m["idMessage"]: m for m in v3.history(chat) if m["type"] == "outgoing"}
    assert set(journal) == set(ids)
    assert {m["statusMessage"] for m in journal.values()} == {"sent"}
    assert journal[ids[1]]["fileName"] == "report.pdf"
    assert journal[ids[1]]["typeMessage"] == "documentMessage"
    assert journal[ids[2]]["typeMessage"] == "imageMessage"


# --- 2. receiving ------------------------------------------------------------------------


def test_fake_user_sends_every_kind_of_file_and_the_bytes_arrive(
    fake: Fake, gateway: Server
) -> None:
    info = bot_instance(gateway, INBOUND)
    api, v3 = sdk(gateway, info), V3(gateway, info)
    queue = Queue(v3)
    user = fake.user(INBOUND)
    blobs = {
        "report.pdf": b"%PDF-1.4 " + os.urandom(250_000),
        "photo.jpg": b"\xff\xd8\xff\xe0" + os.urandom(30_000),
        "clip.mp4": os.urandom(120_000),
        "voice.ogg": b"OggS" + os.urandom(25_000),
        "album-1.jpg": b"\xff\xd8\xff\xe0" + os.urandom(5_000),
        "album-2.jpg": b"\xff\xd8\xff\xe0" + os.urandom(6_000),
    }

    def item(kind: str, name: str) -> dict[str, Any]:
        return attach(kind, name, blobs[name])

    said = [
        user.says("the report", [item("file", "report.pdf")]),
        user.says(None, [item("image", "photo.jpg")]),
        user.says("a clip", [item("video", "clip.mp4")]),
        user.says(None, [item("audio", "voice.ogg")]),
        user.says(None, [{"type": "sticker", "code": "smile42"}]),
        user.says("just text"),
        user.says("album", [item("image", "album-1.jpg"), item("image", "album-2.jpg")]),
    ]
    seqs = [str(m["body"]["seq"]) for m in said]
    expected = {  # idMessage: (typeMessage, bytes)
        seqs[0]: ("documentMessage", blobs["report.pdf"]),
        seqs[1]: ("imageMessage", blobs["photo.jpg"]),
        seqs[2]: ("videoMessage", blobs["clip.mp4"]),
        seqs[3]: ("audioMessage", blobs["voice.ogg"]),
        seqs[4]: ("stickerMessage", PIXEL),
        seqs[5]: ("textMessage", b""),
        seqs[6]: ("imageMessage", blobs["album-1.jpg"]),
        seqs[6] + "01": ("imageMessage", blobs["album-2.jpg"]),
    }
    queue.until(lambda seen: len(incoming(queue)) >= len(expected))
    got = {b["idMessage"]: b for b in incoming(queue)}
    assert set(got) == set(expected)
    for id_message, (type_message, data) in expected.items():
        body = got[id_message]
        assert body["senderData"]["chatId"] == user.v3_chat
        assert body["senderData"]["chatType"] == "user"
        assert body["messageData"]["typeMessage"] == type_message, id_message
        if type_message == "textMessage":
            assert body["messageData"]["textMessageData"]["textMessage"] == "just text"
            continue
        file_data = body["messageData"]["fileMessageData"]
        link = httpx.get(file_data["downloadUrl"], timeout=30)
        assert link.status_code == 200, link.text
        assert sha256(link.content) == sha256(data), id_message
        answer = api.receiving.downloadFile(user.v3_chat, id_message)
        assert answer.code == 200, answer.error
        fetched = httpx.get(answer.data["downloadUrl"], timeout=30)
        assert sha256(fetched.content) == sha256(data), id_message
    document = got[seqs[0]]["messageData"]["fileMessageData"]
    assert (document["fileName"], document["mimeType"]) == ("report.pdf", "application/pdf")
    assert document["caption"] == "the report"
    assert got[seqs[2]]["messageData"]["fileMessageData"]["caption"] == "a clip"
    assert got[seqs[1]]["messageData"]["fileMessageData"]["mimeType"] == "image/jpeg"
    assert got[seqs[2]]["messageData"]["fileMessageData"]["mimeType"] == "video/mp4"
    assert got[seqs[3]]["messageData"]["fileMessageData"]["mimeType"].startswith("audio/")
    assert got[seqs[6]]["messageData"]["fileMessageData"]["caption"] == "album"


def test_fake_user_sends_a_location_and_a_contact_edits_and_removes(
    fake: Fake, gateway: Server
) -> None:
    info = bot_instance(gateway, KINDS)
    v3 = V3(gateway, info)
    queue = Queue(v3)
    user = fake.user(KINDS)
    where = user.says(None, [{"type": "location", "latitude": 55.7558, "longitude": 37.6173}])
    card = user.says(None, [{"type": "contact", "name": "Anna Smit", "phone": "+79991112233"}])
    typo = user.says("helo")
    gone = user.says("never mind")
    seq = {name: str(m["body"]["seq"]) for name, m in
           (("where", where), ("card", card), ("typo", typo), ("gone", gone))}  # fmt: skip
    queue.until(lambda seen: len(incoming(queue)) >= 4)
    user.edits(typo["body"]["mid"], "hello")
    user.removes(gone["body"]["mid"])

    def changed(seen: list[dict[str, Any]]) -> bool:
        kinds = {b["messageData"]["typeMessage"] for b in incoming(queue)}
        return {"editedMessage", "deletedMessage"} <= kinds

    queue.until(changed)
    got = {b["messageData"]["typeMessage"]: b for b in incoming(queue)}
    assert got["locationMessage"]["idMessage"] == seq["where"]
    assert got["locationMessage"]["messageData"]["locationMessageData"] == {
        "latitude": 55.7558, "longitude": 37.6173, "forwardingScore": 0, "isForwarded": False,
    }  # fmt: skip
    contact = got["contactMessage"]["messageData"]["contactMessageData"]
    assert (contact["displayName"], contact["phoneNumber"]) == ("Anna Smit", "79991112233")
    assert contact["vcard"].startswith("BEGIN:VCARD") and "FN:Anna Smit" in contact["vcard"]
    edited = got["editedMessage"]
    assert edited["messageData"]["editedMessageData"] == {
        "textMessage": "hello", "stanzaId": seq["typo"]
    }  # fmt: skip
    assert edited["senderData"]["chatId"] == user.v3_chat
    assert edited["idMessage"] != seq["typo"]
    deleted = got["deletedMessage"]["messageData"]
    assert deleted == {
        "typeMessage": "deletedMessage",
        "deletedMessageData": {"stanzaId": seq["gone"]},
    }

    items = {i["idMessage"]: i for i in v3.history(user.v3_chat)}
    assert set(items) == set(seq.values())  # an edit or removal is no journal item of its own
    assert items[seq["where"]]["typeMessage"] == "locationMessage"
    assert items[seq["where"]]["location"]["latitude"] == 55.7558
    assert items[seq["card"]]["contact"]["displayName"] == "Anna Smit"
    assert (items[seq["typo"]]["textMessage"], items[seq["typo"]]["isEdited"]) == ("hello", True)
    assert (items[seq["gone"]]["isDeleted"], items[seq["gone"]]["isEdited"]) == (True, False)
    assert items[seq["where"]]["isEdited"] is False and items[seq["where"]]["isDeleted"] is False


# --- 3. retention, and a file MAX deleted --------------------------------------------------


def test_evicted_files_come_back_from_max_and_a_deleted_one_is_a_500(
    fake: Fake, tmp_path: Path
) -> None:
    server = serve_maxbot(tmp_path / "data", fake, file_retention="2s")
    try:
        info = bot_instance(server, RETENTION)
        v3 = V3(server, info)
        queue = Queue(v3)
        user = fake.user(RETENTION)
        data = {name: os.urandom(50_000 + n) for n, name in enumerate(("a.bin", "b.bin", "c.bin"))}
        said = {name: user.says(None, [attach("file", name, raw)]) for name, raw in data.items()}
        queue.until(lambda seen: len(incoming(queue)) >= 3)
        ids = {name: str(m["body"]["seq"]) for name, m in said.items()}
        instance = int(info["idInstance"])
        # Eager mirroring copies all three; then MAX loses c.bin, and retention evicts ours.
        wait_until(lambda: files_by_state(server, instance).get("stored") == 3, timeout=20)
        gone = said["c.bin"]["body"]["attachments"][0]["payload"]["url"]
        fake.post(f"/_control/files/{file_id_of(gone)}/delete")
        assert httpx.get(gone, timeout=10).status_code == 404
        wait_until(lambda: files_by_state(server, instance) == {"evicted": 3}, timeout=20)
        assert [p for p in (server.data_dir / "blobs" / "blobs").rglob("*") if p.is_file()] == []

        # The journal's link (fresh: a link lives as long as retention keeps the bytes).
        journal = {m["idMessage"]: m for m in v3.history(user.v3_chat)}
        again = httpx.get(journal[ids["a.bin"]]["downloadUrl"], timeout=30)
        assert again.status_code == 200, again.text
        assert sha256(again.content) == sha256(data["a.bin"])
        answer = v3.download(user.v3_chat, ids["b.bin"])
        assert answer.status_code == 200, answer.text
        fetched = httpx.get(answer.json()["downloadUrl"], timeout=30)
        assert sha256(fetched.content) == sha256(data["b.bin"])

        lost = v3.download(user.v3_chat, ids["c.bin"])
        assert lost.status_code == 500
        assert lost.json() == {
            "statusCode": 500,
            "error": "Internal Server Error",
            "message": (
                f"Internal error when downloading file by chatId {user.v3_chat} and idMessage "
                f"{ids['c.bin']}"
            ),
        }
        assert httpx.get(journal[ids["c.bin"]]["downloadUrl"], timeout=30).status_code >= 400
        # maxgate asked MAX for a fresh URL of c.bin before giving up (and for no other file).
        asked = {c["path_params"]["messageId"] for c in fake.calls("GET", "/messages/{messageId}")}
        assert said["c.bin"]["body"]["mid"] in asked
        assert said["a.bin"]["body"]["mid"] not in asked
    finally:
        server.stop()


# --- 4. expired MAX URLs -------------------------------------------------------------------


def test_expired_max_urls_are_resolved_again_when_first_fetched(tmp_path: Path) -> None:
    token = "short-links-bot-token"
    flags = ("--tokens", token, "--not-ready-seconds", "0", "--file-url-lifetime-seconds", "1")
    with fakemax(tmp_path / "fake", *flags) as short:
        server = serve_maxbot(tmp_path / "data", short, mirror_mode="lazy")
        try:
            info = bot_instance(server, token)
            v3 = V3(server, info)
            queue = Queue(v3)
            user = short.user(token)
            doc, clip = os.urandom(70_000), os.urandom(90_000)
            said = [
                user.says(None, [attach("file", "d.bin", doc)]),
                user.says(None, [attach("video", "v.mp4", clip)]),
            ]
            queue.until(lambda seen: len(incoming(queue)) >= 2)
            urls = [m["body"]["attachments"][0]["payload"]["url"] for m in said]
            # Lazy: nothing was fetched yet, and by now MAX's links have expired.
            wait_until(lambda: all(httpx.get(u, timeout=10).status_code == 403 for u in urls))
            assert short.calls("GET", "/messages/{messageId}") == []
            assert short.calls("GET", "/videos/{videoToken}") == []

            by_id = {b["idMessage"]: b for b in incoming(queue)}
            link = by_id[str(said[0]["body"]["seq"])]["messageData"]["fileMessageData"]
            got = httpx.get(link["downloadUrl"], timeout=30)
            assert got.status_code == 200, got.text
            assert sha256(got.content) == sha256(doc)
            answer = v3.download(user.v3_chat, str(said[1]["body"]["seq"]))
            assert answer.status_code == 200, answer.text
            video = httpx.get(answer.json()["downloadUrl"], timeout=30)
            assert video.status_code == 200, video.text
            assert sha256(video.content) == sha256(clip)

            resolved = short.calls("GET", "/messages/{messageId}")
            assert [c["path_params"]["messageId"] for c in resolved] == [said[0]["body"]["mid"]]
            videos = short.calls("GET", "/videos/{videoToken}")
            token_of_video = said[1]["body"]["attachments"][0]["payload"]["token"]
            assert [c["path_params"]["videoToken"] for c in videos] == [token_of_video]
        finally:
            server.stop()


# --- 5. the marker across kill -9 ------------------------------------------------------------


def stored_marker(data_dir: Path, info: dict[str, Any]) -> int | None:
    """The long-poll marker maxgate keeps for the instance's bot (read from its database)."""
    with contextlib.closing(sqlite3.connect(data_dir / "maxgate.db", timeout=30)) as db:
        row = db.execute(
            "SELECT marker FROM maxbot_bots WHERE instance_id = ?", (info["idInstance"],)
        ).fetchone()
    assert row is not None
    return None if row[0] is None else int(row[0])


class Chatter(threading.Thread):
    """A fake user writing numbered messages until stopped."""

    def __init__(self, user: User) -> None:
        super().__init__(daemon=True)
        self.user = user
        self.sent: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.user.says(f"#{len(self.sent)}")
                self.sent.append(f"#{len(self.sent)}")
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_the_marker_survives_kill_9_no_message_lost_or_doubled(fake: Fake, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = serve_maxbot(data, fake)
    info = bot_instance(server, MARKER)
    enrolled = stored_marker(data, info)
    assert enrolled is not None  # taken when the instance was made
    user = fake.user(MARKER)
    chatter = Chatter(user)
    try:
        chatter.start()
        wait_until(lambda: len(V3(server, info).history(user.v3_chat)) >= 10, timeout=20)
    finally:
        server.stop(signal.SIGKILL)
    at_kill = len(chatter.sent)
    assert at_kill < 60, "the chatter should still be writing when maxgate is killed"
    # The killed process had moved the marker on (a restart does not rely on the journal
    # dropping repeats alone), never past what MAX had handed out (+1: bot_started).
    killed_at = stored_marker(data, info)
    assert killed_at is not None and enrolled < killed_at <= enrolled + 1 + at_kill
    # While maxgate is down the user goes on writing; MAX keeps those for the marker.
    wait_until(lambda: len(chatter.sent) >= at_kill + 15, timeout=20)
    server = serve_maxbot(data, fake)
    try:
        v3 = V3(server, info)
        at_restart = len(chatter.sent)
        wait_until(lambda: len(chatter.sent) >= at_restart + 15, timeout=20)
        chatter.stop.set()
        chatter.join(10)
        assert chatter.error is None, chatter.error
        sent = chatter.sent

        def all_journaled() -> list[dict[str, Any]] | None:
            found = v3.history(user.v3_chat)
            return found if len(found) >= len(sent) else None

        journal = wait_until(all_journaled, timeout=30)
        texts = [m["textMessage"] for m in journal]
        assert sorted(texts) == sorted(sent)  # none missing, none twice
        assert len({m["idMessage"] for m in journal}) == len(sent)
        # The queue says so too: one incomingMessageReceived per message.
        queue = Queue(v3)
        queue.until(lambda seen: len(incoming(queue)) >= len(sent), timeout=60)
        left = v3.get("getWebhooksCount").json()["count"]
        for _ in range(left):
            queue.pull()
        ids = [b["idMessage"] for b in incoming(queue)]
        assert len(ids) == len(set(ids)) == len(sent)
    finally:
        chatter.stop.set()
        server.stop()


# --- 6. a revoked token --------------------------------------------------------------------


def test_a_revoked_token_turns_the_instance_not_authorized(fake: Fake, gateway: Server) -> None:
    info = bot_instance(gateway, REVOKE)
    v3 = V3(gateway, info)
    queue = Queue(v3)
    user = fake.user(REVOKE)
    user.says("still here?")
    queue.until(lambda seen: len(incoming(queue)) >= 1)  # the bot polls
    assert v3.state() == "authorized"

    fake.post(f"/_control/bots/{fake.bot_id(REVOKE)}/revoke")
    wait_until(lambda: v3.state() == "notAuthorized", timeout=15)
    queue.until(
        lambda seen: any(
            b["stateInstance"] == "notAuthorized" for b in queue.of("stateInstanceChanged")
        ),
        timeout=15,
    )
    changed = queue.of("stateInstanceChanged")[-1]
    assert changed["instanceData"]["idInstance"] == info["idInstance"]


# --- 7. a burst within 30 rps --------------------------------------------------------------


def test_a_500_message_burst_keeps_to_30_requests_per_second(fake: Fake, gateway: Server) -> None:
    info = bot_instance(gateway, BURST)
    v3 = V3(gateway, info)
    user = fake.user(BURST)
    assert v3.post("setSettings", {"delaySendMessagesMilliseconds": 500}).status_code == 200
    # The API's floor (500 ms) would make the outbox the limit; the connector's pacing is what
    # this test is about, so the instance's pacing goes to 0 behind the API's back.
    database = gateway.data_dir / "maxgate.db"
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        db.execute(
            "UPDATE instances SET settings = json_set(settings, "
            "'$.delaySendMessagesMilliseconds', 0) WHERE id = ?",
            (info["idInstance"],),
        )
    total = 500
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        for n in range(total):
            answer = client.post(
                v3.url("sendMessage"), json={"chatId": user.v3_chat, "message": f"burst {n}"}
            )
            assert answer.status_code == 200, answer.text
    enqueued = time.monotonic() - started

    # Watched at the fake, whose rendering of a long chat keeps it busy for a while: calls
    # that left maxgate apart then arrive bunched, and must still count no more than 30.
    def all_arrived() -> list[dict[str, Any]] | None:
        found = user.received()
        return found if len(found) >= total else None

    arrived = wait_until(all_arrived, timeout=60, interval=0.3)
    elapsed = time.monotonic() - started
    assert [m["body"]["text"] for m in arrived] == [f"burst {n}" for n in range(total)]
    stats = fake.stats(BURST)
    print(f"burst: {total} sent in {elapsed:.1f} s (enqueued in {enqueued:.1f} s): {stats}")
    assert stats["limited"] == 0, stats
    assert stats["peak_attempted_rps"] <= 30, stats
    # The connector, not the outbox, was the limit: the fake saw close to 30 a second.
    assert stats["peak_rps"] >= 25, stats
    assert elapsed >= total / 30 - 1, (elapsed, enqueued)
    statuses = {m["statusMessage"] for m in v3.history(user.v3_chat) if m["type"] == "outgoing"}
    assert statuses == {"sent"}
