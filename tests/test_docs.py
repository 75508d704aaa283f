"""Tests that keep the docs honest: README quick start, configuration table."""

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
