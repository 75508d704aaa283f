"""No secret in the server's log, even at ``--log-level debug``: webhook token and secret, the
instances' tokens, the partner token, a password in a fetched URL (spec §1.2: the token "never
appears in logs"). The first instance's token, which ``maxgate serve`` prints once on a first
start, belongs to an instance this test does not use."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import start_server
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.e2e

PARTNER = "S3CRET-partner-token-e2e-log"
URL_TOKEN = "S3CRET-webhook-url-token-5b1d"
HMAC_SECRET = "S3CRET-webhook-hmac-secret-9c2e"
URL_PASSWORD = "S3CRET-url-password-41aa"
URL_QUERY_SECRET = "S3CRET-presigned-signature-77c0"


def test_a_debug_log_holds_no_secret(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        server = start_server(
            tmp_path / "data",
            log_level="debug",
            outbound_allow="127.0.0.0/8",
            partner_token=PARTNER,
        )
        try:
            info = server.create_instance()  # by the CLI: its output is not the server's log
            token = info["apiTokenInstance"]
            base = f"{server.base_url}/waInstance{info['idInstance']}"
            settings = {
                "webhookUrl": receiver.url,
                "webhookUrlToken": URL_TOKEN,
                "webhookSecret": HMAC_SECRET,
            }
            answer = httpx.post(f"{base}/setSettings/{token}", json=settings, timeout=10)
            assert answer.json() == {"saveSettings": True}
            assert httpx.get(f"{base}/getSettings/{token}", timeout=10).status_code == 200
            sent = httpx.post(
                f"{base}/sendMessage/{token}",
                json={"chatId": "10000777", "message": "hello"},
                timeout=10,
            )
            assert sent.status_code == 200, sent.text
            # The webhook went out with both secrets in use: the token as the bearer, the
            # secret in the signature.
            delivery = receiver.wait_for(1)[0]
            assert delivery.headers["Authorization"] == f"Bearer {URL_TOKEN}"
            assert delivery.headers["X-Maxgate-Signature"].startswith("sha256=")
            # An outbound fetch (the receiver answers GET with 501), with a password in the URL.
            fetched = httpx.post(
                f"{base}/sendFileByUrl/{token}",
                json={
                    "chatId": "10000777",
                    "urlFile": receiver.url.replace("//", f"//alice:{URL_PASSWORD}@")
                    + f"?X-Amz-Signature={URL_QUERY_SECRET}",
                    "fileName": "x.txt",
                },
                timeout=30,
            )
            assert fetched.status_code == 400, fetched.text
            partner = httpx.post(
                f"{server.base_url}/partner/createInstance/{PARTNER}",
                json={"webhookUrlToken": URL_TOKEN, "webhookSecret": HMAC_SECRET},
                timeout=10,
            )
            assert partner.status_code == 200, partner.text
            other = partner.json()["apiTokenInstance"]
        finally:
            server.stop()
    log = server.log.read_text(errors="replace")
    assert "DEBUG:maxgate.net.http:GET" in log  # the debug level was on (the fetch's line)
    for secret in (URL_TOKEN, HMAC_SECRET, URL_PASSWORD, URL_QUERY_SECRET, token, other, PARTNER):
        assert secret not in log
