"""The ``maxgate`` command: serve, instance …, sandbox …, doctor; download, send, listen.

Over 500 lines on purpose: it is the one place where the command line meets the runtime — each
command is a short function (arguments, one call into the runtime or the client, what to
print), and the commands share the option plumbing, the data-dir checks and the printing
helpers at the top. Splitting it per command group would spread those helpers across modules
without making one command shorter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from maxgate import __version__
from maxgate.client import (
    Client,
    ForbiddenError,
    MaxgateClientError,
    NotFoundError,
    Notification,
    NotificationBody,
    ServerError,
    TransportError,
    link_file_name,
    safe_file_name,
)
from maxgate.domain import filenames
from maxgate.domain.messenger import InboundFile
from maxgate.domain.records import Instance
from maxgate.errors import ConfigError, MaxgateError
from maxgate.net.listen import PortInUse, claim_port
from maxgate.runtime import Runtime
from maxgate.settings import (
    SETTINGS,
    Settings,
    human_size,
    load_settings,
    setting,
    with_generated_secrets,
)
from maxgate.upstream.maxuser import WARNING as MAXUSER_WARNING
from maxgate.upstream.maxuser import MaxUser
from maxgate.upstream.maxuser.adapter import available as maxuser_available

T = TypeVar("T")

app = typer.Typer(
    help="maxgate: a self-hosted GREEN-API v3 gateway for the MAX messenger.",
    no_args_is_help=True,
    add_completion=False,
    # Click's plain help: rich panels label plain flags "<bool>" and wrap the settings list.
    rich_markup_mode=None,
)
instance_app = typer.Typer(help="Create, list and delete instances.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Act as the sandbox messenger's contacts.", no_args_is_help=True)
group_app = typer.Typer(help="Sandbox groups.", no_args_is_help=True)
files_app = typer.Typer(help="Stored files: statistics, eviction, integrity.", no_args_is_help=True)


def _print_version(value: bool) -> None:
    if value:
        print(f"maxgate {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """maxgate: a self-hosted GREEN-API v3 gateway for the MAX messenger."""


app.add_typer(instance_app, name="instance")
app.add_typer(files_app, name="files")
app.add_typer(sandbox_app, name="sandbox")
sandbox_app.add_typer(group_app, name="group")


@app.command(
    "fakemax",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def fakemax(ctx: typer.Context) -> None:
    """A fake of the MAX Bot API for tests and CI: `maxgate fakemax serve --port 8090` (see
    docs/fakemax.md; `maxgate fakemax serve --help` lists its flags; `--web-port N` adds the
    fake of MAX's web protocol, which needs the max-user extra)."""
    from maxgate.fakemax.__main__ import main as fakemax_main

    fakemax_main(ctx.args)


out = Console()
err = Console(stderr=True)

DataDir = Annotated[
    str | None,
    typer.Option("--data-dir", help="Folder for the database, files and keys.", show_default=False),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="A TOML file of settings.", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _settings_epilog() -> str:
    lines = ["Settings (flag, environment variable, default):", ""]
    for s in SETTINGS:
        lines.append(f"{s.flag} / {s.env} (default: {s.show_default()})  {s.help}")
    return "\n\n".join(lines)


SERVED_URL_FILE = "served-url"


def _load(overrides: dict[str, Any], config: Path | None, *, serving: bool = False) -> Settings:
    """Settings for a command; commands other than serve use the URL the server announced.

    Only ``serve`` makes a data dir: any other command refuses one that does not exist (run
    from another folder, it would otherwise make an empty one and show nothing).
    """
    try:
        settings = load_settings(overrides=overrides, config_file=config, generate_secrets=False)
        if not serving and _needs_data_dir(settings) and not settings.data_path.is_dir():
            raise ConfigError(
                f"no maxgate data dir at {settings.data_path}: run this where `maxgate serve` "
                "runs, or point to its data dir with --data-dir, MAXGATE_DATA_DIR or --config"
            )
        if not serving:  # serve makes its secrets once it owns its port
            settings = with_generated_secrets(settings)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    served = settings.data_path / SERVED_URL_FILE
    if not serving and not settings.public_url and served.exists():
        url = served.read_text(encoding="utf-8").strip()
        settings = dataclasses.replace(settings, public_url=url)
    return settings


def _needs_data_dir(settings: Settings) -> bool:
    """Whether a command would keep anything in the data dir (SQLite, files, generated keys)."""
    return not (
        settings.database_url and settings.blob_url and settings.link_key and settings.partner_token
    )


def _run(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def main() -> T:
        runtime = Runtime(settings)
        try:
            await runtime.open()
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(main())
    except MaxgateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc


def instance_info(settings: Settings, instance: Instance, token: str | None) -> dict[str, Any]:
    """What a client needs to use an instance."""
    info: dict[str, Any] = {
        "idInstance": instance.id,
        "apiTokenInstance": token,
        "apiUrl": settings.api_url,
        "mediaUrl": settings.media_url,
        "chatId": instance.chat_id,
    }
    if token is None:
        del info["apiTokenInstance"]
    return info


def _print_instance(info: dict[str, Any]) -> None:
    for key, value in info.items():
        out.print(f"  [bold]{key}[/]: {value}")


def _curl_line(info: dict[str, Any]) -> str:
    url = "{apiUrl}/v3/waInstance{idInstance}/sendMessage/{apiTokenInstance}".format(**info)
    body = json.dumps({"chatId": "20000001", "message": "Hello from maxgate"})
    header = "Content-Type: application/json"
    return f"curl -s -X POST {shlex.quote(url)} -H {shlex.quote(header)} -d {shlex.quote(body)}"


def _parse_setting_flags(args: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--"):
            raise ConfigError(f"unexpected argument {flag!r}")
        name, eq, value = flag[2:].partition("=")
        spec = setting(name)
        if not eq:
            if spec.kind == "bool" and (not rest or rest[0].startswith("--")):
                value = "true"
            elif not rest:
                raise ConfigError(f"{flag} needs a value")
            else:
                value = rest.pop(0)
        found[spec.name] = value
    return found


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_settings_epilog(),
)
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Run the gateway (any setting below is also accepted as a flag)."""
    try:
        extra = _parse_setting_flags(ctx.args)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    settings = _load(
        {"host": host, "port": port, "data_dir": data_dir, **extra}, config, serving=True
    )
    try:
        claim_port(settings.host, settings.port)  # held until the process ends
    except PortInUse as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    settings = with_generated_secrets(settings)
    settings.data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    (settings.data_path / SERVED_URL_FILE).write_text(settings.base_url + "\n", encoding="utf-8")

    async def bootstrap(runtime: Runtime) -> tuple[Instance, str] | None:
        if await runtime.instances.list(include_deleted=True):
            return None
        return await runtime.instances.create(name="sandbox")

    created = _run(settings, bootstrap)
    out.print(f"maxgate {__version__} on {settings.base_url} (data in {settings.data_path})")
    if created is not None:
        _print_first_start(settings, instance_info(settings, *created), config)
    _serve(settings)


def _command(settings: Settings, config: Path | None) -> str:
    """How to run ``maxgate`` so that it finds this server: the command as this shell can run
    it (``maxgate`` when that is on PATH, else the script's path) and the data dir or config
    file when they are not the defaults."""
    script = Path(sys.executable).with_name("maxgate")
    on_path = shutil.which("maxgate")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        words = ["maxgate"]
    else:
        try:
            words = [str(script.absolute().relative_to(Path.cwd()))]
        except ValueError:
            words = [str(script)]
        if "/" not in words[0]:
            words[0] = "./" + words[0]
    if config is not None:
        words += ["--config", str(config.resolve())]
    elif settings.data_path != Path(setting("data_dir").default).resolve():
        words += ["--data-dir", str(settings.data_path)]
    return shlex.join(words)


def _print_first_start(settings: Settings, info: dict[str, Any], config: Path | None) -> None:
    """The first start's banner: the new instance, and commands that work as printed."""
    prefix = _command(settings, config)
    base, _, options = prefix.partition(" ")
    after = f" {options}" if options else ""
    lines = [
        "",
        "Created your first sandbox instance (the token is shown only now):",
        *(f"  {key}: {value}" for key, value in info.items()),
        "",
        "Try it (sends a message to a simulated contact):",
        "  " + _curl_line(info),
        "",
        "A simulated contact writes to you:",
        f"  {base} sandbox send --instance {info['idInstance']} --from 20000001 --text hi{after}",
        "More instances:",
        f"  {base} instance create --json{after}",
        "Every command: " + f"{base} --help",
    ]
    if base != "maxgate":
        lines.append(f"(or put it on PATH first: source {Path(base).parent}/activate)")
    kept = settings.data_path / "partner-token"
    if kept.exists():
        lines.append(f"Partner methods (createInstance, getInstances…) take the token in {kept}")
    # Plain print: rich would wrap the long lines mid-command at the terminal's width.
    print("\n".join(lines) + "\n", flush=True)


def _serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    os.environ.update(settings.to_environ())
    server = Granian(
        "maxgate.app:app_from_environ",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_access=False,
        log_level=LogLevels(settings.log_level),
    )
    server.serve()


def _read_secret_file(path: Path) -> str:
    """A secret from a file (or standard input for ``-``), surrounding whitespace removed; the
    secret never goes on the command line, where other users' ``ps`` would show it."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from None
    secret = text.strip()
    if not secret:
        raise typer.BadParameter(f"{path} is empty")
    return secret


@instance_app.command("create")
def instance_create(
    name: Annotated[str, typer.Option(help="A name for the instance.")] = "",
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            metavar="KIND",
            help="The messenger behind the instance (sandbox | maxbot | maxuser); default: the "
            "setting upstream.",
        ),
    ] = None,
    bot_token_file: Annotated[
        Path | None,
        typer.Option(
            "--bot-token-file",
            metavar="FILE",
            help="For --upstream maxbot: a file holding the bot's token from business.max.ru "
            "('-': standard input). Checked with MAX (GET /me) before the instance is made.",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create an instance and print its credentials (the token is shown only once)."""
    settings = _load({"data_dir": data_dir}, config)
    bot_token = _read_secret_file(bot_token_file) if bot_token_file is not None else None

    async def create(rt: Runtime) -> tuple[Instance, str]:
        if upstream != MaxUser.kind:
            return await rt.create_instance(name=name, upstream=upstream, bot_token=bot_token)
        if not maxuser_available():
            raise ConfigError("a maxuser instance needs PyMax: pip install 'maxgate[max-user]'")
        made, secret = await rt.create_instance(name=name, upstream=upstream, bot_token=bot_token)
        await rt.maxuser.enroll(made.id)  # notAuthorized until its QR code is scanned
        return (await rt.instances.get(made.id)) or made, secret

    instance, token = _run(settings, create)
    if upstream == MaxUser.kind:
        err.print(
            f"[yellow]warning:[/] {MAXUSER_WARNING}. Log the account in by scanning the QR "
            "code of the instance's `qr` method with MAX on the phone (docs/max-user.md)."
        )
    info = instance_info(settings, instance, token)
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        _print_instance(info)


@instance_app.command("list")
def instance_list(
    as_json: AsJson = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """List the live instances."""
    settings = _load({"data_dir": data_dir}, config)
    instances = _run(settings, lambda rt: rt.instances.list())
    rows = [
        {"idInstance": i.id, "name": i.name, "chatId": i.chat_id, "state": i.state}
        for i in instances
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("idInstance", "name", "chatId", "state")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@instance_app.command("delete")
def instance_delete(
    id_instance: Annotated[int, typer.Argument(help="The idInstance to delete.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Delete an instance (its requests then answer "Instance is deleted")."""
    settings = _load({"data_dir": data_dir}, config)
    if not _run(settings, lambda rt: rt.instances.delete(id_instance)):
        err.print(f"[red]error:[/] no live instance {id_instance}")
        raise typer.Exit(1)
    out.print(f"deleted {id_instance}")


async def _file_chunks(path: Path, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk


@sandbox_app.command("send")
def sandbox_send(
    instance: Annotated[int, typer.Option("--instance", help="The instance that receives.")],
    from_chat: Annotated[
        str | None, typer.Option("--from", help="The contact's chatId (digits).")
    ] = None,
    to_chat: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Instead of --from: the instance's own account writes to this chat from its "
            "phone (the instance gets outgoingMessageReceived).",
        ),
    ] = None,
    text: Annotated[str | None, typer.Option(help="A text message.")] = None,
    file: Annotated[Path | None, typer.Option(help="A file to send.", exists=True)] = None,
    caption: Annotated[str, typer.Option(help="The file's caption.")] = "",
    sender_name: Annotated[str, typer.Option("--name", help="The contact's name.")] = "",
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """A simulated contact writes a text or a file into an instance (or, with --to, the
    instance's account writes from its phone)."""
    if (text is None) == (file is None):
        err.print("[red]error:[/] give exactly one of --text or --file")
        raise typer.Exit(2)
    if (from_chat is None) == (to_chat is None):
        err.print("[red]error:[/] give exactly one of --from or --to")
        raise typer.Exit(2)
    chat = from_chat or to_chat or ""
    option = "--from" if from_chat is not None else "--to"
    if not chat.lstrip("-").isdigit():
        err.print(f"[red]error:[/] {option} must be a chatId of digits, got {chat!r}")
        raise typer.Exit(2)
    settings = _load({"data_dir": data_dir}, config)

    async def work(runtime: Runtime) -> str:
        target = await runtime.instances.get(instance)
        if target is None or target.deleted:
            raise MaxgateError(f"no live instance {instance}")
        if target.upstream != "sandbox":
            raise MaxgateError(
                f"instance {instance} is of kind {target.upstream}: the sandbox reaches only "
                "instances of kind sandbox"
            )
        inbound = None
        type_message = "textMessage"
        if file is not None:
            mime = filenames.guess_mime(file.name)
            ref = await runtime.sandbox.keep_file(_file_chunks(file))
            inbound = InboundFile(ref, file.name, mime, file.stat().st_size)
            type_message = filenames.type_message_for(mime)
        if to_chat is not None:
            id_message = await runtime.sandbox.own_send(
                target, to_chat, text=text, file=inbound, caption=caption, type_message=type_message
            )
        else:
            id_message = await runtime.sandbox.contact_send(
                instance,
                chat,
                text=text,
                file=inbound,
                caption=caption,
                sender_name=sender_name,
                type_message=type_message,
            )
        if settings.mirror_mode == "eager":
            await runtime.files.mirror_pending()
        return id_message

    id_message = _run(settings, work)
    if as_json:
        sys.stdout.write(json.dumps({"idMessage": id_message, "chatId": chat}) + "\n")
    elif to_chat is not None:
        out.print(f"sent {id_message} from {instance}'s phone to {to_chat}")
    else:
        out.print(f"sent {id_message} from {chat} to {instance}")


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Option(help="The group's name.")],
    member: Annotated[list[int], typer.Option(help="A member idInstance (repeatable).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create a sandbox group of instances and print its chatId."""
    settings = _load({"data_dir": data_dir}, config)

    async def work(runtime: Runtime) -> str:
        for m in member:
            found = await runtime.instances.get(m)
            if found is None or found.deleted:
                raise MaxgateError(f"no live instance {m}")
        return await runtime.sandbox.create_group(name, member)

    out.print(_run(settings, work))


@files_app.command("stats")
def files_stats(
    as_json: AsJson = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Files and their size by instance and state (remote, stored, evicted); --json gives
    bytes."""
    settings = _load({"data_dir": data_dir}, config)
    rows = _run(settings, lambda rt: rt.retention.stats())
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("instance", "state", "files", "size")
    for row in rows:
        size = human_size(row["bytes"])
        table.add_row(str(row["instance_id"]), row["state"], str(row["files"]), size)
    out.print(table)


@files_app.command("sweep")
def files_sweep(
    as_json: AsJson = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Evict the bytes of expired files now (and drop leftovers of interrupted writes)."""
    settings = _load({"data_dir": data_dir}, config)

    async def work(runtime: Runtime) -> dict[str, int]:
        result = await runtime.retention.sweep()
        result.temp_objects = await runtime.blobs.sweep_temp(older_than_seconds=3600)
        return dataclasses.asdict(result)

    report = _run(settings, work)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items()))


@files_app.command("verify")
def files_verify(
    as_json: AsJson = False, data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Re-hash every stored blob; exit 1 when any is missing or does not match its hash."""
    settings = _load({"data_dir": data_dir}, config)
    result = _run(settings, lambda rt: rt.retention.verify())
    if as_json:
        sys.stdout.write(json.dumps(dataclasses.asdict(result)) + "\n")
    else:
        out.print(f"checked {result.checked} blobs")
        for key in result.mismatched:
            out.print(f"  [red]hash mismatch[/]: {key}")
        for key in result.missing:
            out.print(f"  [red]missing[/]: {key}")
    if result.mismatched or result.missing:
        raise typer.Exit(1)


@app.command()
def doctor(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Check settings, database and storage; print versions."""
    settings = _load({"data_dir": data_dir}, config)
    out.print(f"maxgate {__version__}, Python {platform.python_version()}, {platform.platform()}")
    ok = True

    async def check() -> list[tuple[str, str | None]]:
        runtime = Runtime(settings)
        results: list[tuple[str, str | None]] = []
        try:
            for name, probe in (
                ("database", runtime.db.migrate),
                ("database round trip", runtime.db.check),
                ("blob store", runtime.blobs.check),
            ):
                try:
                    await probe()
                    results.append((name, None))
                except MaxgateError as exc:
                    results.append((name, str(exc)))
        finally:
            await runtime.close()
        return results

    out.print(f"  settings: ok (data dir {settings.data_path}, public URL {settings.base_url})")
    for name, problem in asyncio.run(check()):
        if problem is None:
            out.print(f"  {name}: ok")
        else:
            ok = False
            out.print(f"  {name}: [red]{problem}[/]")
    for package in ("starlette", "granian", "sqlalchemy", "obstore", "httpx", "msgspec"):
        from importlib.metadata import version

        out.print(f"  {package} {version(package)}")
    if not ok:
        raise typer.Exit(1)


# --- Transfers: download, send and listen talk to any GREEN-API v3 server through the client ---

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="MAXGATE_API_URL",
        show_envvar=True,
        show_default=False,
        help="The server's apiUrl, e.g. http://127.0.0.1:7880.",
    ),
]
IdInstance = Annotated[
    str,
    typer.Option(
        "--id-instance",
        envvar="MAXGATE_ID_INSTANCE",
        show_envvar=True,
        show_default=False,
        help="The instance's idInstance.",
    ),
]
ApiToken = Annotated[
    str,
    typer.Option(
        "--api-token",
        envvar="MAXGATE_API_TOKEN",
        show_envvar=True,
        show_default=False,
        help="The instance's apiTokenInstance (prefer the environment variable: other users "
        "can see command-line flags).",
    ),
]
RECONNECT_MAX_WAIT = 30.0


@contextlib.contextmanager
def _connect(api_url: str, id_instance: str, api_token: str) -> Iterator[Client]:
    """A client for a transfer command; client errors end the command with exit code 1.

    The client's messages never contain the token; the options' own are checked here.
    """
    for value, flag, env in (
        (api_url, "--api-url", "MAXGATE_API_URL"),
        (id_instance, "--id-instance", "MAXGATE_ID_INSTANCE"),
        (api_token, "--api-token", "MAXGATE_API_TOKEN"),
    ):
        if not value:
            err.print(f"[red]error:[/] give {flag} or set {env}")
            raise typer.Exit(2)
    try:
        client = Client(api_url=api_url, id_instance=id_instance, api_token=api_token)
    except ValueError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        with client:
            yield client
    except MaxgateClientError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(1) from None


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress callback drawing a rich bar (bytes/s, ETA) on stderr; None when stderr is
    not a terminal, so logs and pipes stay clean."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(escape(label), total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@app.command()
def download(
    chat: Annotated[str, typer.Option("--chat", help="The chatId of the message.")],
    message: Annotated[str, typer.Option("--message", help="The idMessage of the file message.")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to save: a file, or a folder (the file keeps its name; a trailing / "
            "makes a folder that does not exist yet). Default: the current folder.",
            show_default=False,
        ),
    ] = None,
    api_url: ApiUrl = "",
    id_instance: IdInstance = "",
    api_token: ApiToken = "",
    as_json: AsJson = False,
) -> None:
    """Download the file of a message (a partial file is resumed; the hash is checked)."""
    with _connect(api_url, id_instance, api_token) as client:
        link = client.download_file_link(chat, message).download_url
        target = Path.cwd() if output is None else Path(output)
        if output is not None and output.endswith(("/", os.sep)):
            target.mkdir(parents=True, exist_ok=True)  # a folder, as cp and curl read it
        with _progress(link_file_name(link)) as progress:
            try:
                done = client.download_link(link, target, progress=progress)
            except KeyboardInterrupt:
                err.print("interrupted: run the same command again to resume")
                raise typer.Exit(130) from None
    if as_json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(done)) + "\n")
    else:
        print(done.path)


@app.command()
def send(
    chat: Annotated[str, typer.Option("--chat", help="The chatId to send to.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file", help="The file to send.", exists=True, dir_okay=False, readable=True
        ),
    ],
    caption: Annotated[
        str | None, typer.Option(help="A caption for the file.", show_default=False)
    ] = None,
    api_url: ApiUrl = "",
    id_instance: IdInstance = "",
    api_token: ApiToken = "",
    as_json: AsJson = False,
) -> None:
    """Send a file (sendFileByUpload, streamed from disk) and print its idMessage."""
    with _connect(api_url, id_instance, api_token) as client, _progress(file.name) as progress:
        sent = client.send_file_by_upload(chat, file, caption=caption, progress=progress)
    if as_json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(sent)) + "\n")
    else:
        print(sent.id_message)


def _describe(body: NotificationBody) -> str:
    """One line of rich markup for a notification (the terminal view of ``listen``)."""
    when = datetime.fromtimestamp(body.timestamp).strftime("%H:%M:%S") if body.timestamp else ""
    head = f"[dim]{when}[/] [bold]{escape(body.type_webhook)}[/]"
    if body.message_data is not None:
        sender = body.sender_data
        who = escape(f"{sender.sender_name or sender.sender} in {sender.chat_id}") if sender else ""
        data = body.message_data
        if data.file_message_data is not None:
            what = f"[cyan]{escape(data.file_message_data.file_name)}[/]"
            if data.file_message_data.caption:
                what += f" {escape(data.file_message_data.caption)}"
        elif data.text_message_data is not None:
            what = escape(data.text_message_data.text_message)
        elif data.extended_text_message_data is not None:
            what = escape(data.extended_text_message_data.text)
        else:
            what = escape(data.type_message)
        return f"{head} {who}: {what}"
    if body.status:
        return f"{head} {escape(body.id_message)} in {escape(body.chat_id)}: {escape(body.status)}"
    if body.state_instance:
        return f"{head} {escape(body.state_instance)}"
    return head


def _save_file(client: Client, notification: Notification, folder: Path) -> None:
    """Download a file message's file into ``folder`` as ``<idMessage>-<fileName>``: the same
    name when the notification is delivered again, so a broken-off download is resumed."""
    body = notification.body
    file = body.file
    if file is None:
        return
    name = safe_file_name(f"{body.id_message}-{file.file_name}", "file")
    target = folder / name
    try:
        with _progress(file.file_name) as progress:
            try:
                client.download_link(file.download_url, target, progress=progress)
            except (ForbiddenError, NotFoundError):
                # The link in the notification expired: ask for a fresh one.
                chat_id, id_message = body.message_chat_id, body.id_message
                client.download_file(chat_id, id_message, target, progress=progress)
    except MaxgateClientError as exc:
        problem = f"could not save {escape(name)}: {escape(str(exc))}"
        err.print(f"[red]error:[/] {problem}", soft_wrap=True)
        return
    err.print(f"saved {escape(str(target))}", soft_wrap=True, highlight=False)


@app.command()
def listen(
    download_files: Annotated[
        Path | None,
        typer.Option(
            "--download-files",
            help="Save the file of every file message into this folder.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    receive_timeout: Annotated[
        int, typer.Option(help="Seconds each long poll waits (5 to 60).", min=5, max=60)
    ] = 20,
    api_url: ApiUrl = "",
    id_instance: IdInstance = "",
    api_token: ApiToken = "",
) -> None:
    """Print notifications as they arrive (receiveNotification), deleting each once handled.

    One JSON object per line when stdout is not a terminal; a readable line otherwise. Stop
    with Ctrl-C. A notification is deleted only after it was printed (and its file saved), so
    one that was being handled when the command stopped is delivered again next time.
    """
    pretty = out.is_terminal
    if download_files is not None:
        download_files.mkdir(parents=True, exist_ok=True)
    with _connect(api_url, id_instance, api_token) as client:
        wait = 1.0
        while True:
            try:
                for notification in client.notifications(receive_timeout=receive_timeout):
                    wait = 1.0
                    if pretty:
                        out.print(_describe(notification.body), soft_wrap=True)
                    else:
                        sys.stdout.buffer.write(msgspec.json.encode(notification.raw) + b"\n")
                        sys.stdout.buffer.flush()
                    if download_files is not None:
                        _save_file(client, notification, download_files)
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
            except (TransportError, ServerError) as exc:
                # The server restarts or the network hiccups: keep listening.
                err.print(f"[yellow]warning:[/] {escape(str(exc))}; retrying in {wait:.0f} s")
                time.sleep(wait)
                wait = min(wait * 2, RECONNECT_MAX_WAIT)


def main() -> None:
    """Console entry point."""
    app()
