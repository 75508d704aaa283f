"""Settings: the table and the dataclass agree, precedence, parsing, errors, secrets."""

from __future__ import annotations

import dataclasses
import ipaddress
import stat
from pathlib import Path
from typing import Any

import pytest

from maxgate.errors import ConfigError
from maxgate.settings import (
    MAX_FILE_SIZE_CAP,
    SETTINGS,
    Secret,
    Settings,
    load_settings,
    parse_bool,
    parse_duration,
    parse_size,
    setting,
)

LINK_KEY = "link-key-value-never-shown-8f3a"
PARTNER_TOKEN = "partner-token-value-never-shown-77c1"


def _field_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    assert field.default_factory is not dataclasses.MISSING, field.name
    return field.default_factory()


def _load(tmp_path: Path, **kwargs: Any) -> Settings:
    """Settings on a data dir under ``tmp_path``, the real environment ignored."""
    overrides = {"data_dir": str(tmp_path / "data"), **kwargs.pop("overrides", {})}
    kwargs.setdefault("environ", {})
    return load_settings(overrides=overrides, **kwargs)


def test_every_setting_has_a_field_with_the_same_default() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert {s.name for s in SETTINGS} == set(fields)
    assert len(SETTINGS) == len(fields)
    for spec in SETTINGS:
        default = _field_default(fields[spec.name])
        assert spec.parse(spec.default) == default, spec.name
        assert type(spec.parse(spec.default)) is type(default), spec.name


def test_the_defaults_load_as_the_dataclass_defaults() -> None:
    assert load_settings(environ={}, generate_secrets=False) == Settings()


def test_every_setting_has_a_flag_env_var_and_help() -> None:
    for spec in SETTINGS:
        assert spec.env == "MAXGATE_" + spec.name.upper()
        assert spec.flag == "--" + spec.name.replace("_", "-")
        assert spec.help.strip(), spec.name
        assert setting(spec.flag[2:]) is spec
    with pytest.raises(ConfigError, match="nonsense"):
        setting("nonsense")


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "maxgate.toml"
    config.write_text('[maxgate]\nport = 1111\nhost = "10.0.0.1"\nmax_file_size = "20MB"\n')
    env = {"MAXGATE_PORT": "2222", "MAXGATE_MAX_FILE_SIZE": "30MB"}

    everything = _load(tmp_path, config_file=config, environ=env, overrides={"port": "3333"})
    assert everything.port == 3333  # flag
    assert everything.max_file_size == 30 * 1024**2  # env
    assert everything.host == "10.0.0.1"  # file
    assert everything.file_retention == 15 * 86400  # default

    assert _load(tmp_path, config_file=config, environ=env).port == 2222
    assert _load(tmp_path, config_file=config).port == 1111
    assert _load(tmp_path).port == 7880
    # a None override (a flag not given) does not hide the others
    assert _load(tmp_path, environ=env, overrides={"port": None}).port == 2222


def test_a_config_file_without_a_section_works(tmp_path: Path) -> None:
    config = tmp_path / "flat.toml"
    config.write_text(
        'port = 8001\nfile_retention = "2d"\noutbound_allow = ["127.0.0.0/8", "10.1.0.0/16"]\n'
        "sandbox_retention = 30\n"
    )
    loaded = _load(tmp_path, config_file=config)
    assert loaded.port == 8001
    assert loaded.file_retention == 2 * 86400
    assert loaded.sandbox_retention == 30.0
    assert loaded.outbound_allow == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.1.0.0/16"),
    )


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("port", "eighty"),
        ("max_file_size", "12 parsecs"),
        ("max_file_size", "1.5GB"),
        ("file_retention", "a fortnight"),
        ("file_retention", "-5s"),
        ("outbound_allow", "127.0.0.0/8,not-a-network"),
        ("outbound_allow", "300.1.2.3/8"),
        ("upstream", "telegram"),
        ("log_level", "verbose"),
        ("workers", "2.5"),
        ("webhook_retry_delays", "5s,soon"),
        ("webhook_retry_delays", "5s,0s"),
        ("notification_retention", "-5s"),
        ("webhook_timeout", "-1s"),
    ],
)
@pytest.mark.parametrize("source", ["env", "flag", "file"])
def test_bad_values_name_the_setting_and_its_env_var(
    tmp_path: Path, name: str, bad: str, source: str
) -> None:
    env_var = "MAXGATE_" + name.upper()
    with pytest.raises(ConfigError) as info:
        if source == "env":
            _load(tmp_path, environ={env_var: bad})
        elif source == "flag":
            _load(tmp_path, overrides={name: bad})
        else:
            config = tmp_path / "bad.toml"
            config.write_text(f"{name} = {bad!r}\n".replace("'", '"'))
            _load(tmp_path, config_file=config)
    message = str(info.value)
    assert name in message and env_var in message, message
    assert bad.split(",")[-1] in message, message  # and the bad value


def test_every_bool_setting_rejects_nonsense(tmp_path: Path) -> None:
    for spec in SETTINGS:
        if spec.kind == "bool":
            with pytest.raises(ConfigError, match=spec.env):
                _load(tmp_path, environ={spec.env: "maybe"})


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        _load(tmp_path, config_file=tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, config_file=broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        _load(tmp_path, config_file=unknown)
    with pytest.raises(ConfigError, match="colour"):
        _load(tmp_path, overrides={"colour": "blue"})


def test_env_vars_that_are_not_settings_are_ignored(tmp_path: Path) -> None:
    loaded = _load(tmp_path, environ={"MAXGATE_COLOUR": "blue", "PORT": "1"})
    assert loaded.port == 7880


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("100MB", 100 * 1024**2),
        ("100mb", 100 * 1024**2),
        ("512kb", 512 * 1024),
        ("4GB", 4 * 1024**3),
        ("1gb", 1024**3),
        ("5b", 5),
        ("1024", 1024),
        (" 10 MB ", 10 * 1024**2),
        (2048, 2048),
    ],
)
def test_parse_size(raw: str | int, expected: int) -> None:
    assert parse_size(raw) == expected


@pytest.mark.parametrize("raw", ["", "MB", "1.5GB", "-1", "10TB", "ten", "1 2MB"])
def test_parse_size_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(raw)


@pytest.mark.parametrize(("raw", "expected"), [("512k", 512 * 1024), ("1g", 1024**3)])
def test_parse_size_accepts_a_unit_without_b(raw: str, expected: int) -> None:
    assert parse_size(raw) == expected


def test_a_unit_without_b_is_never_a_key_error(tmp_path: Path) -> None:
    try:
        loaded = _load(tmp_path, environ={"MAXGATE_MAX_FILE_SIZE": "10m"})
    except ConfigError:
        return  # refusing it cleanly would be fine too
    assert loaded.max_file_size == 10 * 1024**2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("15d", 15 * 86400.0),
        ("12h", 12 * 3600.0),
        ("30m", 1800.0),
        ("45s", 45.0),
        ("1.5h", 5400.0),
        ("0.25s", 0.25),
        ("90", 90.0),
        (" 2 D ", 2 * 86400.0),
        (3, 3.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(raw: str | float, expected: float) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize("raw", ["", "1w", "-5s", "soon", "h", "1h30m"])
def test_parse_duration_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("true", True), ("Yes", True), ("1", True), ("on", True), (True, True)],
        *[("false", False), ("NO", False), ("0", False), (" off ", False), (False, False)],
    ],
)
def test_parse_bool(raw: str | bool, expected: bool) -> None:
    assert parse_bool(raw) is expected


def test_cidrs_parse(tmp_path: Path) -> None:
    loaded = _load(tmp_path, environ={"MAXGATE_OUTBOUND_ALLOW": " 127.0.0.0/8, 10.0.0.1,::1/128,"})
    assert loaded.outbound_allow == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    loose = _load(tmp_path, environ={"MAXGATE_OUTBOUND_ALLOW": "192.168.1.7/24"})
    assert loose.outbound_allow == (ipaddress.ip_network("192.168.1.0/24"),)
    assert _load(tmp_path, environ={"MAXGATE_OUTBOUND_ALLOW": ""}).outbound_allow == ()


def test_max_file_size_is_capped_at_4gb(tmp_path: Path) -> None:
    assert _load(tmp_path, overrides={"max_file_size": "4GB"}).max_file_size == MAX_FILE_SIZE_CAP
    for too_big in ("5GB", str(MAX_FILE_SIZE_CAP + 1), "0"):
        with pytest.raises(ConfigError, match="max_file_size"):
            _load(tmp_path, overrides={"max_file_size": too_big})


def test_file_retention_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file_retention"):
        _load(tmp_path, overrides={"file_retention": "0"})


def test_range_errors_name_the_env_var_and_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, environ={"MAXGATE_MAX_FILE_SIZE": "5GB"})
    assert "MAXGATE_MAX_FILE_SIZE" in str(info.value) and "5GB" in str(info.value)


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    loaded = _load(tmp_path, overrides={"link_key": LINK_KEY, "partner_token": PARTNER_TOKEN})
    assert loaded.link_key.reveal() == LINK_KEY
    assert loaded.partner_token.reveal() == PARTNER_TOKEN
    for shown in (repr(loaded), str(loaded), repr(loaded.link_key), f"{loaded.partner_token}"):
        assert LINK_KEY not in shown and PARTNER_TOKEN not in shown
    assert "**********" in repr(loaded)

    generated = _load(tmp_path / "other")
    for value in (generated.link_key.reveal(), generated.partner_token.reveal()):
        assert value and value not in repr(generated)


def test_credentials_in_urls_never_show_in_repr() -> None:
    settings = Settings(
        public_url="https://gw.example.com/base",
        database_url="postgresql+asyncpg://maxgate:S3CRET-db@db.internal:5432/maxgate",
        blob_url="s3://bucket/prefix?region=eu&access_key_id=AKIA&secret_access_key=S3CRET-s3",
        rate_limit_storage="redis://:S3CRET-redis@127.0.0.1:6379/0",
    )
    for shown in (repr(settings), str(settings)):
        assert "S3CRET" not in shown and "AKIA" not in shown
    shown = repr(settings)
    assert "postgresql+asyncpg://maxgate:***@db.internal:5432/maxgate" in shown
    assert "s3://bucket/prefix?region=eu&access_key_id=***&secret_access_key=***" in shown
    assert "redis://:***@127.0.0.1:6379/0" in shown
    assert "https://gw.example.com/base" in shown
    assert settings.database_url.endswith(":S3CRET-db@db.internal:5432/maxgate")  # kept as given
    assert settings == Settings(
        **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    )


def test_secret_behaves_like_a_guarded_string() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never equal to the bare string
    assert not Secret("") and Secret("x")
    assert repr(Secret("")) == "Secret('')"
    assert len({Secret("a"), Secret("a")}) == 1


def test_secrets_are_generated_once_kept_0600_and_reused(tmp_path: Path) -> None:
    first = _load(tmp_path)
    data = tmp_path / "data"
    for name, secret in (("link-key", first.link_key), ("partner-token", first.partner_token)):
        path = data / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert path.read_text().strip() == secret.reveal()
        assert len(secret.reveal()) >= 32
    assert first.link_key != first.partner_token

    second = _load(tmp_path)
    assert second.link_key == first.link_key
    assert second.partner_token == first.partner_token


def test_given_secrets_are_not_written_down(tmp_path: Path) -> None:
    loaded = _load(tmp_path, environ={"MAXGATE_LINK_KEY": LINK_KEY})
    assert loaded.link_key.reveal() == LINK_KEY
    assert not (tmp_path / "data" / "link-key").exists()
    assert (tmp_path / "data" / "partner-token").exists()


def test_generate_secrets_false_writes_nothing(tmp_path: Path) -> None:
    loaded = _load(tmp_path, generate_secrets=False)
    assert not loaded.link_key and not loaded.partner_token
    assert not (tmp_path / "data").exists()


def test_to_environ_round_trips(tmp_path: Path) -> None:
    custom = _load(
        tmp_path,
        overrides={
            "host": "0.0.0.0",
            "port": "8123",
            "public_url": "https://max.example.com/",
            "database_url": "postgresql+asyncpg://u:p@127.0.0.1/db",
            "max_file_size": "2GB",
            "file_retention": "36h",
            "link_key": LINK_KEY,
            "outbound_allow": "127.0.0.0/8,fd00::/8",
            "sandbox_retention": "1.5h",
            "log_level": "debug",
        },
    )
    environ = custom.to_environ()
    assert set(environ) == {s.env for s in SETTINGS}
    assert all(isinstance(v, str) for v in environ.values())
    assert load_settings(environ=environ, generate_secrets=False) == custom
    assert load_settings(environ=environ) == custom  # the secrets travel along

    defaults = _load(tmp_path / "defaults")
    assert load_settings(environ=defaults.to_environ(), generate_secrets=False) == defaults


def test_to_environ_round_trips_tiny_durations(tmp_path: Path) -> None:
    custom = _load(tmp_path, overrides={"sandbox_retention": "0.00001"})
    assert load_settings(environ=custom.to_environ(), generate_secrets=False) == custom


def test_generated_secrets_say_so_in_their_shown_default() -> None:
    for spec in SETTINGS:
        if spec.kind == "secret" and "generated" in spec.help:
            assert "generated" in spec.show_default(), spec.name


def test_derived_urls(tmp_path: Path) -> None:
    plain = _load(tmp_path)
    assert plain.base_url == "http://127.0.0.1:7880"
    assert plain.api_url == plain.media_url == plain.base_url
    assert plain.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert plain.resolved_database_url.endswith(str(tmp_path / "data" / "maxgate.db"))
    assert plain.resolved_blob_url == (tmp_path / "data" / "blobs").as_uri()
    assert _load(tmp_path, overrides={"host": "0.0.0.0"}).base_url == "http://127.0.0.1:7880"
    assert _load(tmp_path, overrides={"host": "::"}).base_url == "http://[::1]:7880"
    assert _load(tmp_path, overrides={"host": "::1", "port": "9"}).base_url == "http://[::1]:9"
    behind = _load(tmp_path, overrides={"public_url": "https://max.example.com/"})
    assert behind.base_url == "https://max.example.com"


def test_webhook_retry_delays_are_a_list_of_durations(tmp_path: Path) -> None:
    loaded = _load(tmp_path, environ={"MAXGATE_WEBHOOK_RETRY_DELAYS": "2s, 1m,1h"})
    assert loaded.webhook_retry_delays == (2.0, 60.0, 3600.0)
    again = _load(tmp_path, environ=loaded.to_environ())
    assert again.webhook_retry_delays == loaded.webhook_retry_delays
    assert setting("webhook_retry_delays").show_default() == "5s,10s,1m"


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    loaded = _load(tmp_path)
    assert stat.S_IMODE(loaded.data_path.stat().st_mode) == 0o700
