"""Every setting of maxgate, declared once.

Each entry of ``SETTINGS`` names a setting, its type, default, help text and environment variable.
The CLI flags, ``maxgate serve --help``, the configuration docs and validation are all derived
from this table. The environment and config files are read only at the edge (``load_settings``);
the application itself takes a ``Settings`` object.

Precedence, highest first: command-line flag, environment variable ``MAXGATE_*``, the TOML file
given with ``--config``, the default.

Over 500 lines because ``SETTINGS`` is the table of every setting with its help text — data
that the flags, the docs and validation are derived from; keeping it in one place is the point.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from maxgate.errors import ConfigError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_FILE_SIZE_CAP = 4 * 1024**3  # MAX's own limit for files


def parse_size(value: str | int) -> int:
    """Parse ``100MB``, ``512kb``, ``4GB`` or a plain number of bytes."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?b?)\s*", value.lower())
    if not match:
        raise ValueError(f"expected a size such as 100MB, got {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def format_size(size: int) -> str:
    """A size as people write it: ``5GB``, ``100MB``, ``512KB`` or bytes."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


def format_duration(seconds: float) -> str:
    """A duration as ``parse_duration`` reads it: ``15d``, ``12h``, ``30m`` or ``45s``."""
    for unit, factor in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{seconds / factor:g}{unit}"
    return f"{seconds:g}s"


def human_size(size: int) -> str:
    """A size rounded for reading: ``512 bytes``, ``1.5 KiB``, ``121 MiB``, ``3.2 GiB``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def parse_duration(value: str | int | float) -> float:
    """Parse ``15d``, ``12h``, ``30m``, ``45s`` or a plain number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)  # plain seconds, also as written by to_environ (1e-05, 8.64e+16)
    except ValueError:
        pass
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value.lower())
    if not match:
        raise ValueError(f"expected a duration such as 15d, 12h or 30s, got {value!r}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_bool(value: str | bool) -> bool:
    """Parse ``true``/``false``, ``yes``/``no``, ``1``/``0``, ``on``/``off``."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _parse_int(value: str | int) -> int:
    return value if isinstance(value, int) else int(str(value).strip())


def _parse_str(value: Any) -> str:
    return str(value)


class Secret:
    """A string that never shows itself in a repr, a log line or an error."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself; call only where it is used, never to print it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name, how to parse it, its default and its help text."""

    name: str
    kind: str  # str, int, bool, size, duration, durations, secret, cidrs, choice
    default: Any
    help: str
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "MAXGATE_" + self.name.upper()

    @property
    def flag(self) -> str:
        """The command-line flag that sets it."""
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: Any) -> Any:
        """Turn a raw value (a string from env/CLI, or a TOML value) into the typed value."""
        parser: Callable[[Any], Any] = _PARSERS[self.kind]
        try:
            value = parser(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {self.name} ({self.env}): {exc}") from exc
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"setting {self.name} ({self.env}): expected one of "
                f"{', '.join(self.choices)}, got {value!r}"
            )
        return value

    def show_default(self) -> str:
        """The default as the docs and --help print it."""
        if self.kind == "secret" and self.name in GENERATED_SECRETS:
            return "(generated, kept in the data dir)"
        if self.default in ("", ()):
            return "(empty)"
        if self.kind == "durations":
            return ",".join(format_duration(d) for d in self.default)
        if self.kind == "duration":
            return format_duration(self.default)
        if self.kind == "size":
            return format_size(self.default)
        return str(self.default)


def _parse_cidrs(value: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if isinstance(value, tuple):
        return value
    items = value if isinstance(value, list) else str(value).split(",")
    networks = []
    for item in items:
        text = str(item).strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a CIDR such as 127.0.0.0/8") from exc
    return tuple(networks)


def _parse_durations(value: Any) -> tuple[float, ...]:
    if isinstance(value, tuple):
        return value
    items = value if isinstance(value, list) else str(value).split(",")
    durations = tuple(parse_duration(item) for item in items if str(item).strip())
    if not durations or min(durations) <= 0:
        raise ValueError(f"expected positive durations such as 5s,10s,1m, got {value!r}")
    return durations


def _parse_secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(str(value))


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "str": _parse_str,
    "choice": _parse_str,
    "int": _parse_int,
    "bool": parse_bool,
    "size": parse_size,
    "duration": parse_duration,
    "secret": _parse_secret,
    "cidrs": _parse_cidrs,
    "durations": _parse_durations,
}

SETTINGS: tuple[Setting, ...] = (
    Setting("host", "str", "127.0.0.1", "Address to listen on."),
    Setting("port", "int", 7880, "TCP port to listen on."),
    Setting(
        "public_url",
        "str",
        "",
        "Base URL clients use to reach this server (e.g. https://max.example.com behind a "
        "reverse proxy). Builds apiUrl, mediaUrl and file links. Empty: http://HOST:PORT.",
    ),
    Setting("data_dir", "str", "maxgate-data", "Folder for the database, files and keys."),
    Setting(
        "database_url",
        "str",
        "",
        "SQLAlchemy URL of the metadata store. Empty: a SQLite file in the data dir. "
        "PostgreSQL: postgresql+asyncpg://user@host/db.",
    ),
    Setting(
        "blob_url",
        "str",
        "",
        "Where file bytes are stored: file:///path or s3://bucket/prefix?endpoint=…&region=…. "
        "Empty: the folder 'blobs' in the data dir.",
    ),
    Setting(
        "max_file_size",
        "size",
        100 * 1024**2,
        "Largest file API clients may send (up to 4GB). Received files are mirrored up to "
        "MAX's own 4GB limit.",
    ),
    Setting("file_retention", "duration", 15 * 86400.0, "How long file bytes are kept."),
    Setting(
        "link_key",
        "secret",
        "",
        "Key that signs file links. Empty: generated once and kept in the data dir.",
    ),
    Setting(
        "partner_token",
        "secret",
        "",
        "Token of the partner API (createInstance, getInstances, deleteInstanceAccount). "
        "Empty: generated once and kept in the data dir.",
    ),
    Setting(
        "upstream",
        "choice",
        "sandbox",
        "The kind of messenger behind instances created without one (sandbox | maxbot).",
        choices=("sandbox", "maxbot"),
    ),
    Setting(
        "outbound_allow",
        "cidrs",
        (),
        "Comma-separated CIDRs that sendFileByUrl and webhooks may reach although they are "
        "loopback, private or link-local (e.g. 127.0.0.0/8).",
    ),
    Setting("outbound_timeout", "duration", 60.0, "Time limit of one outbound file fetch."),
    Setting(
        "sandbox_retention",
        "duration",
        0.0,
        "How long the sandbox messenger keeps the files it carried. 0: forever.",
    ),
    Setting(
        "maxbot_base_url",
        "str",
        "https://platform-api2.max.ru",
        "Base URL of the MAX Bot API (maxbot instances). A fake on a private address (maxgate "
        "fakemax) also needs outbound_allow.",
    ),
    Setting(
        "maxbot_ca_bundle",
        "str",
        "",
        "PEM file of the CAs trusted for the MAX Bot API. Empty: the usual roots and the "
        "Минцифры root CA that MAX requires (shipped with maxgate).",
    ),
    Setting(
        "maxbot_rps",
        "int",
        30,
        "Requests per second at most per bot token, all of an instance's work together (MAX "
        "asks for about 30; more gets a bot limited).",
    ),
    Setting(
        "maxbot_updates",
        "choice",
        "auto",
        "How maxbot instances receive: webhook (MAX POSTs to public_url/maxbot/webhook/ID), "
        "polling (GET /updates), or auto: webhook when public_url is https://.",
        choices=("auto", "webhook", "polling"),
    ),
    Setting(
        "maxbot_poll_timeout",
        "int",
        30,
        "Seconds one long poll of GET /updates waits for updates (MAX allows up to 90).",
    ),
    Setting(
        "maxuser_url",
        "str",
        "wss://api.oneme.ru/websocket",
        "WebSocket URL of MAX's web protocol for maxuser instances (PyMax's WebClient; "
        "docs/max-user.md).",
    ),
    Setting(
        "maxuser_send_interval",
        "duration",
        3.0,
        "Least time between two messages of one maxuser account, on top of "
        "delaySendMessagesMilliseconds: the operator's protection against a ban by MAX.",
    ),
    Setting("max_json_body", "size", 1024**2, "Largest JSON request body."),
    Setting(
        "notification_retention",
        "duration",
        86400.0,
        "How long an undelivered notification stays queued (receiveNotification and webhooks).",
    ),
    Setting(
        "webhook_timeout",
        "duration",
        10.0,
        "Time limit of one webhook delivery; a slower receiver is retried later.",
    ),
    Setting(
        "webhook_retry_delays",
        "durations",
        (5.0, 10.0, 60.0),
        "Waits before the 1st, 2nd, … retry of a failed webhook delivery; the last one repeats "
        "until the queue retention passes.",
    ),
    Setting(
        "mirror_mode",
        "choice",
        "eager",
        "eager: copy received files into storage at once; lazy: only when first asked for.",
        choices=("eager", "lazy"),
    ),
    Setting(
        "mirror_concurrency",
        "int",
        4,
        "Received files fetched at once by eager mirroring (at least 1): one file's round trips "
        "overlap the others' transfers.",
    ),
    Setting("rate_limits", "bool", True, "Per-instance, per-method request rate limits (spec §5)."),
    Setting(
        "rate_limit_overrides",
        "str",
        "",
        "Changes to the rate table, requests per second: method=N, comma-separated "
        "(e.g. downloadFile=5,getChatHistory=10).",
    ),
    Setting(
        "rate_limit_storage",
        "str",
        "memory://",
        "Where rate counters live: memory:// (one process) or redis://host:port (shared).",
    ),
    Setting(
        "link_downloads_per_client",
        "int",
        16,
        "Concurrent file-link downloads allowed per client address (0: no limit).",
    ),
    Setting(
        "link_downloads_per_instance",
        "int",
        64,
        "Concurrent file-link downloads allowed per instance (0: no limit).",
    ),
    Setting(
        "metrics",
        "bool",
        True,
        "Serve Prometheus metrics at /metrics (requests, latency, files, queues).",
    ),
    Setting(
        "metrics_token",
        "secret",
        "",
        "Bearer token that /metrics requires (Authorization: Bearer …). Empty: open, as most "
        "Prometheus exporters are.",
    ),
    Setting("workers", "int", 1, "Server worker processes."),
    Setting(
        "log_level",
        "choice",
        "info",
        "Log level.",
        choices=("debug", "info", "warning", "error"),
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
GENERATED_SECRETS = ("link_key", "partner_token")  # the secrets generated when left empty


# Query parameters of a settings URL whose values are credentials (the blob URL's S3 keys).
_SECRET_PARAMETER = re.compile(r"secret|token|password|passwd|key", re.IGNORECASE)


def _shown(value: Any) -> Any:
    """A setting's value for a repr: a URL's password and credential parameters masked."""
    if not isinstance(value, str) or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "***"  # unparsable: it may hold anything
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}")
    if any(_SECRET_PARAMETER.search(name) for name, _ in query):
        masked = (f"{k}={'***' if _SECRET_PARAMETER.search(k) else v}" for k, v in query)
        parts = parts._replace(query="&".join(masked))
    return parts.geturl()


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings the application runs with. Build it with ``load_settings``.

    Its repr shows no secret: ``Secret`` values are masked, and so are the passwords and
    credential parameters of URLs (``database_url``, ``blob_url``, ``rate_limit_storage``).
    """

    host: str = "127.0.0.1"
    port: int = 7880
    public_url: str = ""
    data_dir: str = "maxgate-data"
    database_url: str = ""
    blob_url: str = ""
    max_file_size: int = 100 * 1024**2
    file_retention: float = 15 * 86400.0
    link_key: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    partner_token: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    upstream: str = "sandbox"
    outbound_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    outbound_timeout: float = 60.0
    sandbox_retention: float = 0.0
    maxbot_base_url: str = "https://platform-api2.max.ru"
    maxbot_ca_bundle: str = ""
    maxbot_rps: int = 30
    maxbot_updates: str = "auto"
    maxbot_poll_timeout: int = 30
    maxuser_url: str = "wss://api.oneme.ru/websocket"
    maxuser_send_interval: float = 3.0
    max_json_body: int = 1024**2
    notification_retention: float = 86400.0
    webhook_timeout: float = 10.0
    webhook_retry_delays: tuple[float, ...] = (5.0, 10.0, 60.0)
    mirror_mode: str = "eager"
    mirror_concurrency: int = 4
    rate_limits: bool = True
    rate_limit_overrides: str = ""
    rate_limit_storage: str = "memory://"
    link_downloads_per_client: int = 16
    link_downloads_per_instance: int = 64
    metrics: bool = True
    metrics_token: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    workers: int = 1
    log_level: str = "info"

    def __repr__(self) -> str:
        shown = (f"{f.name}={_shown(getattr(self, f.name))!r}" for f in dataclasses.fields(self))
        return f"Settings({', '.join(shown)})"

    @property
    def data_path(self) -> Path:
        """The data dir as an absolute path."""
        return Path(self.data_dir).expanduser().resolve()

    @property
    def base_url(self) -> str:
        """Public base URL without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - only a display value
            host = "127.0.0.1"
        elif host == "::":
            host = "[::1]"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """What a client uses as GREEN-API's apiUrl."""
        return self.base_url

    @property
    def media_url(self) -> str:
        """What a client uses as GREEN-API's mediaUrl (the same server)."""
        return self.base_url

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_path / 'maxgate.db'}"

    @property
    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to the data dir's 'blobs' folder."""
        return self.blob_url or (self.data_path / "blobs").as_uri()

    @property
    def sandbox_blob_url(self) -> str:
        """Where the sandbox messenger keeps the bytes it carried (its own storage)."""
        return (self.data_path / "sandbox").as_uri()

    def to_environ(self) -> dict[str, str]:
        """Serialize to MAXGATE_* variables, so worker processes rebuild the same Settings."""
        out: dict[str, str] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if isinstance(value, Secret):
                text = value.reveal()
            elif isinstance(value, tuple):
                text = ",".join(str(v) for v in value)
            else:
                text = str(value)
            out[setting.env] = text
        return out


def setting(name: str) -> Setting:
    """Look up a setting by name; raises ConfigError naming the unknown one."""
    try:
        return _BY_NAME[name.replace("-", "_")]
    except KeyError:
        raise ConfigError(f"unknown setting {name!r}") from None


def load_settings(
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    generate_secrets: bool = True,
) -> Settings:
    """Resolve settings from the defaults, a TOML file, the environment and overrides.

    Secrets left empty (link key, partner token) are generated once and kept in the data dir
    (mode 0600), so links and the partner token survive restarts.
    """
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    if config_file is not None:
        values.update(_read_config(Path(config_file)))
    env = os.environ if environ is None else environ
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = s.parse(env[s.env])
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[setting(name).name] = setting(name).parse(raw)
    for s in SETTINGS:
        values[s.name] = s.parse(values[s.name])
    settings = Settings(**values)
    if not 0 < settings.max_file_size <= MAX_FILE_SIZE_CAP:
        raise ConfigError(
            f"setting max_file_size ({setting('max_file_size').env}): expected a size between "
            f"1 byte and 4GB, got {format_size(settings.max_file_size)}"
        )
    for name in ("file_retention", "notification_retention", "webhook_timeout"):
        value = getattr(settings, name)
        if value <= 0:
            raise ConfigError(
                f"setting {name} ({setting(name).env}): expected a positive "
                f"duration, got {value:g} seconds"
            )
    if settings.mirror_concurrency < 1:
        raise ConfigError(
            f"setting mirror_concurrency ({setting('mirror_concurrency').env}): expected a "
            f"number of files of at least 1, got {settings.mirror_concurrency}"
        )
    if generate_secrets:
        settings = with_generated_secrets(settings)
    return settings


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("maxgate", data)
    return {setting(str(k)).name: setting(str(k)).parse(v) for k, v in section.items()}


def with_generated_secrets(settings: Settings) -> Settings:
    """``settings`` with the link key and partner token kept in the data dir (made if absent)
    wherever they were left empty."""
    link_key, partner_token = settings.link_key, settings.partner_token
    if not link_key:
        link_key = Secret(_kept_secret(settings.data_path / "link-key"))
    if not partner_token:
        partner_token = Secret(_kept_secret(settings.data_path / "partner-token"))
    return dataclasses.replace(settings, link_key=link_key, partner_token=partner_token)


def _kept_secret(path: Path) -> str:
    """Read a secret file, creating it with a fresh random value (mode 0600) if absent.

    A data dir made here is private (0700): it holds the database, with webhook tokens and
    secrets in clear, and the stored files."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    value = secrets.token_hex(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value


def settings_markdown() -> str:
    """The configuration reference table, as docs/configuration.md embeds it."""
    rows = [
        "| setting | flag | environment | default | what it does |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        help_text = s.help.replace("|", "\\|")
        rows.append(f"| `{s.name}` | `{s.flag}` | `{s.env}` | {s.show_default()} | {help_text} |")
    return "\n".join(rows) + "\n"
