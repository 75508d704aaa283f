"""The eager mirroring setting ``mirror_concurrency``: its default, its sources, its range, and
the runtime handing it to the file service. (Beside tests/test_settings.py, which its owner may
merge it into.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from maxgate.errors import ConfigError
from maxgate.runtime import Runtime
from maxgate.settings import load_settings


def test_mirror_concurrency_defaults_to_four(tmp_path: Path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, environ={})
    assert settings.mirror_concurrency == 4


def test_mirror_concurrency_comes_from_the_environment_and_reaches_the_files(
    tmp_path: Path,
) -> None:
    environ = {"MAXGATE_MIRROR_CONCURRENCY": "9"}
    settings = load_settings(overrides={"data_dir": str(tmp_path)}, environ=environ)
    assert settings.mirror_concurrency == 9
    assert Runtime(settings).files.mirror_concurrency == 9


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_mirror_concurrency_must_be_at_least_one(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides={"data_dir": str(tmp_path), "mirror_concurrency": bad}, environ={})
    message = str(info.value)
    assert "mirror_concurrency" in message and "MAXGATE_MIRROR_CONCURRENCY" in message
    assert "at least 1" in message and bad in message


def test_mirror_concurrency_that_is_no_number_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mirror_concurrency"):
        load_settings(overrides={"data_dir": str(tmp_path), "mirror_concurrency": "many"})
