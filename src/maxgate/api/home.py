"""``GET /``: a small page for whoever opens the server in a browser.

It says what the server is and links the reference, the document and the probes. It is plain
HTML, readable without scripts, with nothing loaded from elsewhere; it shows no secret (the
instance URL is a template with placeholders).
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from maxgate import __version__

INSTANCE_PATH = "/v3/waInstance{idInstance}/{method}/{apiTokenInstance}"
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>maxgate {version}</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }}
code {{ font-size: 0.95em; background: #f3f3f3; padding: 0 0.2em; overflow-wrap: anywhere; }}
</style>
</head>
<body>
<h1>maxgate {version}</h1>
<p>A GREEN-API v3 gateway for MAX, self-hosted.</p>
<p>Instance API calls go to <code>{calls}</code>
(also without <code>/v3</code>).</p>
<ul>
{links}
</ul>
</body>
</html>
"""


def _links(root: str, *, metrics: bool) -> list[tuple[str, str]]:
    links = [
        (f"{root}/docs", "API reference (every method, with its request and answer)"),
        (f"{root}/openapi.json", "the OpenAPI document"),
        (f"{root}/health", "liveness probe"),
        (f"{root}/ready", "readiness probe (database and blob store)"),
    ]
    if metrics:
        links.append((f"{root}/metrics", "Prometheus metrics"))
    return links


def home_html(base_url: str, root_path: str = "", *, metrics: bool) -> str:
    """The page: ``base_url`` is the server's public URL (for the instance URL template),
    ``root_path`` the prefix the server is mounted under (for the links)."""
    root = root_path.rstrip("/")
    items = "\n".join(
        f'<li><a href="{escape(href)}">{escape(href.removeprefix(root))}</a>: {escape(text)}</li>'
        for href, text in _links(root, metrics=metrics)
    )
    calls = base_url.rstrip("/") + INSTANCE_PATH
    return _PAGE.format(version=escape(__version__), calls=escape(calls), links=items)


async def home_page(request: Request) -> Response:
    """``GET /`` (and ``HEAD``): what this server is, with links to its reference and probes."""
    settings = request.app.state.runtime.settings
    page = home_html(
        settings.base_url, request.scope.get("root_path", ""), metrics=settings.metrics
    )
    headers = {"content-security-policy": PAGE_CSP, "x-content-type-options": "nosniff"}
    return HTMLResponse(page, headers=headers)
