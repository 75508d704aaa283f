"""GREEN-API's text marks sent as MAX's HTML (``formatting``), and such a body taken by a real
``maxgate fakemax`` (which checks every exchange against MAX's schema)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from maxgate.net.client import OutboundClient
from maxgate.upstream.maxbot.api import BotApi, RateWindow
from maxgate.upstream.maxbot.formatting import MAX_TEXT, new_body_text, to_html

TOKEN = "format-test-token"


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("*bold* _italic_ ~strike~", "<b>bold</b> <i>italic</i> <s>strike</s>"),
        ("*_both_*", "<b><i>both</i></b>"),
        ("(*a*), _b_.", "(<b>a</b>), <i>b</i>."),
        ("*a*b*", "<b>a*b</b>"),
        ("run `ls *.txt` now", "run <code>ls *.txt</code> now"),
        ("```\nx = *y*\n``` *z*", "<pre>\nx = *y*\n</pre> <b>z</b>"),
        ("a < b & *c*", "a &lt; b &amp; <b>c</b>"),
        ("Привет, *мир*!", "Привет, <b>мир</b>!"),
    ],
)
def test_marks_become_max_html_and_the_rest_is_escaped(text: str, sent: str) -> None:
    assert new_body_text(text) == {"text": sent, "format": "html"}


@pytest.mark.parametrize(
    "text",
    [
        "snake_case_names and file_name.txt",
        "2*3*4 = 24, a * b * c",
        "**not whatsapp**",
        "*across\nlines*",
        "* a list item",
        "<b>literal tags</b> & [links](https://example.com) # not a header",
        "_ _ ~ ~",
    ],
)
def test_a_text_without_marks_goes_as_it_is_without_format(text: str) -> None:
    assert new_body_text(text) == {"text": text}


def test_no_text_no_fields_and_an_overlong_conversion_goes_plain() -> None:
    assert new_body_text(None) == {} and new_body_text("") == {}
    text = "*b* " * (MAX_TEXT // 4)  # 4000 characters, 7000 with the tags
    assert len(text) == MAX_TEXT and len(to_html(text)) > MAX_TEXT
    assert new_body_text(text) == {"text": text}


async def test_max_takes_the_formatted_body(fake: tuple[str, Path], client: OutboundClient) -> None:
    base, log = fake
    user = httpx.post(f"{base}/_control/users", json={"first_name": "Ivan"}).json()
    chat = httpx.post(f"{base}/_control/users/{user['user_id']}/start", json={}).json()
    api = BotApi(client, TOKEN, base_url=base, window=RateWindow(30), timeout=10)
    for text in ("*Заказ* _№7_ готов: `A-1`", "plain 2*3"):
        await api.send({"user_id": user["user_id"]}, new_body_text(text))
    messages = httpx.get(f"{base}/_control/chats/{chat['chat_id']}/messages").json()["messages"]
    texts = sorted((m["body"]["seq"], m["body"]["text"]) for m in messages)
    assert [text for _seq, text in texts] == [
        "<b>Заказ</b> <i>№7</i> готов: <code>A-1</code>",
        "plain 2*3",
    ]
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    bodies = [e["body"] for e in sent if e["path"] == "/messages" and e["method"] == "POST"]
    assert [b.get("format") for b in bodies] == ["html", None]
    assert all(e["status"] == 200 for e in sent)
