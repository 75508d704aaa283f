"""``python -m maxgate.fakemax``: flags and FAKEMAX_* variables are the config's fields."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from maxgate.fakemax.__main__ import config_from_args, parser
from maxgate.fakemax.config import FakeMaxConfig


def test_every_setting_is_a_flag_and_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKEMAX_RATE_LIMIT_RPS", "5")
    args = parser().parse_args(
        ["serve", "--tokens", "a,b", "--not-ready-seconds", "2", "--webhook-require-https", "yes"]
    )
    config = config_from_args(args)
    assert (config.tokens, config.not_ready_seconds, config.rate_limit_rps) == (("a", "b"), 2.0, 5)
    assert config.webhook_require_https is True
    assert FakeMaxConfig.from_environ(config.to_environ()) == config
    help_text = parser().format_help() + " ".join(
        f.metadata["help"] for f in dataclasses.fields(FakeMaxConfig)
    )
    assert "attachment.not.ready" in help_text


def test_a_bad_value_is_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "maxgate.fakemax", "serve", "--webhook-require-https", "maybe"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode != 0
    assert "webhook_require_https must be true or false" in run.stderr
