"""docs/fakemax.md names every control route, opcode and setting of the web fake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from maxgate.fakemax.web import control
from maxgate.fakemax.web.config import WebFakeConfig
from maxgate.fakemax.web.handlers import HANDLERS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "fakemax.md").read_text(encoding="utf-8")
SECTION = DOC.split("## The web protocol", 1)[1]


def test_every_control_route_is_documented() -> None:
    for route in control.ROUTES:
        assert f"`{route.method} {route.path}`" in SECTION, route


def test_every_served_opcode_is_documented() -> None:
    for op in HANDLERS:
        assert f"`{op.name}` {op.value}" in SECTION, op


def test_every_setting_is_documented() -> None:
    for field in dataclasses.fields(WebFakeConfig):
        assert f"`--{field.name.replace('_', '-')}`" in SECTION, field.name
