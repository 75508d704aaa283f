"""``GET /``: the page a browser gets, with its links, and no secret on it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from maxgate import __version__
from maxgate.api.home import home_html
from maxgate.runtime import Runtime
from tests.api.conftest import GatewayFactory
from tests.conftest import Account


class _Page(HTMLParser):
    """The links, title and text of a page, and every external reference it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.sources: list[str] = []
        self.title = ""
        self.text: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        for name in ("src", "srcset"):
            if values.get(name):
                self.sources.append(str(values[name]))
        if tag == "link" and values.get("href"):
            self.sources.append(str(values["href"]))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


async def test_the_root_is_a_page_about_the_server(
    client: httpx.AsyncClient, runtime: Runtime, account: Account
) -> None:
    response = await client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    html = response.text
    assert '<meta charset="utf-8">' in html
    page = _parse(html)
    assert page.title == f"maxgate {__version__}"
    text = " ".join(" ".join(page.text).split())
    assert f"maxgate {__version__}" in text
    assert "GREEN-API v3 gateway for MAX" in text
    base = runtime.settings.base_url.rstrip("/")
    assert f"{base}/v3/waInstance{{idInstance}}/{{method}}/{{apiTokenInstance}}" in text
    assert page.links == ["/docs", "/openapi.json", "/health", "/ready", "/metrics"]
    assert page.sources == []  # nothing loaded, from elsewhere or here
    assert "<script" not in html
    for secret in (runtime.settings.partner_token.reveal(), account.token):
        assert secret not in html
    for link in page.links:
        assert (await client.get(link)).status_code == 200, link


async def test_head_of_the_root(client: httpx.AsyncClient) -> None:
    response = await client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert int(response.headers["content-length"]) == len((await client.get("/")).content)


async def test_no_metrics_link_without_metrics(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics="false")
    page = _parse((await gateway.client.get("/")).text)
    assert "/metrics" not in page.links
    assert page.links == ["/docs", "/openapi.json", "/health", "/ready"]


def test_links_follow_the_mount_point_and_text_is_escaped() -> None:
    html = home_html("https://gw.example/<b>&x", "/gateway/", metrics=False)
    assert _parse(html).links == [
        "/gateway/docs",
        "/gateway/openapi.json",
        "/gateway/health",
        "/gateway/ready",
    ]
    assert "https://gw.example/&lt;b&gt;&amp;x/v3/waInstance" in html
    assert "<b>" not in html
    assert re.search(r"<title>maxgate [^<]+</title>", html)
