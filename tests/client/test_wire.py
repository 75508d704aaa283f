"""URLs of the v3 methods and the scrubbing of tokens from text."""

from __future__ import annotations

from maxgate.client import redact_url_tokens
from maxgate.client._wire import Endpoint, notification

TOKEN = "0123456789abcdef" * 3 + "ab"


def endpoint(**options: str) -> Endpoint:
    return Endpoint.build(
        api_url=options.get("api_url", "http://h:8080/"),
        media_url=options.get("media_url"),
        id_instance="3100000001",
        api_token=TOKEN,
    )


def test_method_urls() -> None:
    e = endpoint()
    assert e.url("getSettings") == f"http://h:8080/waInstance3100000001/getSettings/{TOKEN}"
    assert e.url("deleteNotification", extra="17").endswith(f"/{TOKEN}/17")
    assert e.url("uploadFile", media=True).startswith("http://h:8080/waInstance")
    media = endpoint(api_url="http://h/v3", media_url="http://m/v3")
    assert media.url("uploadFile", media=True).startswith("http://m/v3/waInstance3100000001/")
    assert TOKEN not in repr(e)


def test_tokens_are_scrubbed_from_any_v3_url() -> None:
    text = (
        f"GET http://h/v3/waInstance3100000001/getSettings/{TOKEN} failed; "
        f"'http://h/waInstance1/deleteNotification/{TOKEN}/5' too"
    )
    scrubbed = redact_url_tokens(text)
    assert TOKEN not in scrubbed
    assert "waInstance3100000001/getSettings/*** failed" in scrubbed
    assert "waInstance1/deleteNotification/***/5'" in scrubbed
    assert endpoint().redact(f"token={TOKEN}") == "token=***"


def test_a_notification_keeps_its_raw_body() -> None:
    received = notification(
        b'{"receiptId": 3, "body": {"typeWebhook": "outgoingMessageStatus", "chatId": "1",'
        b' "idMessage": "9", "status": "read", "futureField": [1]}}'
    )
    assert received is not None and received.receipt_id == 3
    assert (received.body.status, received.body.message_chat_id) == ("read", "1")
    assert received.raw["futureField"] == [1]  # unknown fields survive for printing
    assert notification(b"null") is None
