"""docs/fakemax.md names every route and every setting the fake has."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from maxgate.fakemax import botapi, chats, control, messages
from maxgate.fakemax.config import FakeMaxConfig

DOC = (Path(__file__).resolve().parents[2] / "docs" / "fakemax.md").read_text(encoding="utf-8")


def test_every_route_is_documented_with_its_methods() -> None:
    for module in (botapi, chats, messages, control):
        for route in module.ROUTES:
            methods = (route.methods or set()) - {"HEAD"}
            named = re.compile(re.escape(route.path) + r"(?![\w/{])")
            rows = [line for line in DOC.splitlines() if named.search(line)]
            assert rows, f"docs/fakemax.md does not name {route.path}"
            for method in methods:
                assert any(re.search(rf"\b{method}\b", row) for row in rows), (method, route.path)


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(FakeMaxConfig):
        flag = "--" + field.name.replace("_", "-")
        assert f"`{flag}`" in DOC, f"docs/fakemax.md lacks {flag}"
