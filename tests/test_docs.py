"""Tests that keep the docs honest: README quick start, configuration table, methods,
webhooks, links between pages."""

from __future__ import annotations

import os
import re
from pathlib import Path

from maxgate.settings import settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_doc_matches_the_settings_table() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert settings_markdown() in doc, "docs/configuration.md is stale: regenerate the table"


def test_readme_first_screen_has_exactly_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert [c for c in commands if c] == ["./scripts/serve", "./scripts/test"]
    assert readme.index("./scripts/serve") < 1500, "the commands must be on the first screen"


def test_the_readme_commands_and_ci_exist_and_are_executable() -> None:
    for name in ("scripts/serve", "scripts/test", "scripts/install", ".ci/run"):
        path = ROOT / name
        assert path.is_file(), name
        assert os.access(path, os.X_OK), f"{name} is not executable"
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# --- docs/methods.md, docs/webhooks.md and the links between pages ----------------------------

DOCS = ROOT / "docs"
_METHOD_ROW = re.compile(r"^\| `(?P<name>\w+)` \| (?P<verb>[A-Z]+) \| (?P<rate>[^|]+) \|", re.M)


def _fenced_after(text: str, marker: str) -> str:
    found = re.search(rf"<!--\s*{re.escape(marker)}\s*-->\s*\n```\w*\n(.*?)```", text, re.S)
    assert found is not None, f"no block after {marker}"
    return found.group(1)


def test_methods_doc_lists_every_registered_method_with_its_verb_and_rate() -> None:
    import maxgate.api.methods  # noqa: F401 - registers every method
    from maxgate.api.ratelimit import DEFAULT_RATES, FALLBACK_RATE
    from maxgate.api.routing import METHODS, PARTNER_METHODS

    rows = {
        m["name"]: (m["verb"], m["rate"].strip())
        for m in _METHOD_ROW.finditer((DOCS / "methods.md").read_text(encoding="utf-8"))
    }
    expected = {
        spec.name: ("/".join(sorted(spec.verbs)), str(DEFAULT_RATES.get(key, FALLBACK_RATE)))
        for key, spec in METHODS.items()
    }
    expected |= {
        spec.name: ("/".join(sorted(spec.verbs)), "—") for spec in PARTNER_METHODS.values()
    }
    missing = sorted(set(expected) - set(rows))
    assert not missing, f"docs/methods.md lacks a row for {missing}"
    unknown = sorted(set(rows) - set(expected))
    assert not unknown, f"docs/methods.md lists methods the server does not have: {unknown}"
    wrong = {name: rows[name] for name in expected if rows[name] != expected[name]}
    assert not wrong, f"verb or rate differ from the server's (expected {expected}): {wrong}"


def test_webhooks_doc_signature_snippet_agrees_with_maxgate() -> None:
    import time

    from maxgate.domain.webhooks import signature

    snippet = _fenced_after((DOCS / "webhooks.md").read_text(encoding="utf-8"), "webhooks:verify")
    namespace: dict[str, object] = {}
    exec(compile(snippet, "docs/webhooks.md", "exec"), namespace)
    verify = namespace["verify"]
    assert callable(verify)
    body = b'{"typeWebhook": "incomingMessageReceived", "idMessage": "1"}'
    now = str(int(time.time()))
    headers = {"X-Maxgate-Timestamp": now, "X-Maxgate-Signature": signature("s3cret", now, body)}
    assert verify("s3cret", headers, body) is True
    assert verify("other", headers, body) is False
    assert verify("s3cret", headers, body + b" ") is False
    old = str(int(time.time()) - 3600)
    stale = {"X-Maxgate-Timestamp": old, "X-Maxgate-Signature": signature("s3cret", old, body)}
    assert verify("s3cret", stale, body) is False
    assert verify("s3cret", {}, body) is False


def test_webhooks_doc_names_the_kinds_settings_and_headers_maxgate_uses() -> None:
    from maxgate.domain.notifications import KIND_SETTINGS

    doc = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    for kind, switch in KIND_SETTINGS.items():
        assert re.search(rf"^\| `{kind}` \|.*\| `{switch}` \|$", doc, re.M), (kind, switch)
    source = (ROOT / "src" / "maxgate" / "domain" / "webhooks.py").read_text(encoding="utf-8")
    sent = set(re.findall(r'"(X-Maxgate-\w+)"', source))
    documented = set(re.findall(r"`(X-Maxgate-\w+)`", doc))
    assert sent == documented


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_docs_point_at_files_and_headings_that_exist() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"\w+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: broken link {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                anchors = {_anchor(h) for h in headings}
                assert anchor in anchors, f"{page.name}: no heading for {target} in {anchors}"


def test_environment_variables_and_toml_keys_in_the_docs_are_settings() -> None:
    import tomllib

    from maxgate.settings import SETTINGS, setting

    known = {s.env for s in SETTINGS} | {
        "MAXGATE_API_URL",  # the client commands' credentials (send, download, listen)
        "MAXGATE_ID_INSTANCE",
        "MAXGATE_API_TOKEN",
    }
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for name in set(re.findall(r"\bMAXGATE_[A-Z_]*[A-Z]\b", text)):
            assert name in known, f"{page.name} names {name}, which is no setting"
        for block in re.findall(r"```toml\n(.*?)```", text, re.S):
            data = tomllib.loads(block)
            for key in data.get("maxgate", data):
                setting(key)  # raises ConfigError naming an unknown key


def test_the_client_can_set_the_webhook_secret() -> None:
    import inspect

    from maxgate.client import AsyncClient, Client, InstanceSettings

    for cls in (Client, AsyncClient):
        assert "webhook_secret" in inspect.signature(cls.set_settings).parameters
    assert "webhook_secret" in InstanceSettings.__struct_fields__
