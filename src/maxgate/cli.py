"""The ``maxgate`` command: serve, instance …, sandbox …, doctor."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import platform
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from maxgate import __version__
from maxgate.domain import filenames
from maxgate.domain.records import Instance
from maxgate.errors import ConfigError, MaxgateError
from maxgate.runtime import Runtime
from maxgate.settings import SETTINGS, Settings, load_settings, setting
from maxgate.upstream.base import InboundFile

T = TypeVar("T")

app = typer.Typer(
    help="maxgate: a self-hosted GREEN-API v3 gateway for the MAX messenger.",
    no_args_is_help=True,
    add_completion=False,
)
instance_app = typer.Typer(help="Create, list and delete instances.", no_args_is_help=True)
sandbox_app = typer.Typer(help="Act as the sandbox messenger's contacts.", no_args_is_help=True)
group_app = typer.Typer(help="Sandbox groups.", no_args_is_help=True)
files_app = typer.Typer(help="Stored files: statistics, eviction, integrity.", no_args_is_help=True)
app.add_typer(instance_app, name="instance")
app.add_typer(files_app, name="files")
app.add_typer(sandbox_app, name="sandbox")
sandbox_app.add_typer(group_app, name="group")

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
    """Settings for a command; commands other than serve use the URL the server announced."""
    try:
        settings = load_settings(overrides=overrides, config_file=config)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    served = settings.data_path / SERVED_URL_FILE
    if serving:
        served.write_text(settings.base_url + "\n", encoding="utf-8")
    elif not settings.public_url and served.exists():
        url = served.read_text(encoding="utf-8").strip()
        settings = dataclasses.replace(settings, public_url=url)
    return settings


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

    async def bootstrap(runtime: Runtime) -> tuple[Instance, str] | None:
        if await runtime.instances.list(include_deleted=True):
            return None
        return await runtime.instances.create(name="sandbox")

    created = _run(settings, bootstrap)
    out.print(f"maxgate {__version__} on {settings.base_url} (data in {settings.data_path})")
    if created is not None:
        info = instance_info(settings, *created)
        out.print("\nCreated your first sandbox instance (the token is shown only now):")
        _print_instance(info)
        out.print("\nTry it:")
        print("  " + _curl_line(info))
        out.print(
            "\nMore instances: maxgate instance create --json; "
            "a contact writing to you: maxgate sandbox send --instance "
            f"{info['idInstance']} --from 20000001 --text hi\n"
        )
    _serve(settings)


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


@instance_app.command("create")
def instance_create(
    name: Annotated[str, typer.Option(help="A name for the instance.")] = "",
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create an instance and print its credentials (the token is shown only once)."""
    settings = _load({"data_dir": data_dir}, config)
    instance, token = _run(settings, lambda rt: rt.instances.create(name=name))
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
    """Delete an instance (its requests then answer ``Instance is deleted``)."""
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
    from_chat: Annotated[str, typer.Option("--from", help="The contact's chatId (digits).")],
    text: Annotated[str | None, typer.Option(help="A text message.")] = None,
    file: Annotated[Path | None, typer.Option(help="A file to send.", exists=True)] = None,
    caption: Annotated[str, typer.Option(help="The file's caption.")] = "",
    sender_name: Annotated[str, typer.Option("--name", help="The contact's name.")] = "",
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """A simulated contact writes a text or a file into an instance."""
    if (text is None) == (file is None):
        err.print("[red]error:[/] give exactly one of --text or --file")
        raise typer.Exit(2)
    if not from_chat.lstrip("-").isdigit():
        err.print(f"[red]error:[/] --from must be a chatId of digits, got {from_chat!r}")
        raise typer.Exit(2)
    settings = _load({"data_dir": data_dir}, config)

    async def work(runtime: Runtime) -> str:
        target = await runtime.instances.get(instance)
        if target is None or target.deleted:
            raise MaxgateError(f"no live instance {instance}")
        if file is None:
            return await runtime.sandbox.contact_send(
                instance, from_chat, text=text, sender_name=sender_name
            )
        mime = filenames.guess_mime(file.name)
        ref = await runtime.sandbox.keep_file(_file_chunks(file))
        inbound = InboundFile(ref, file.name, mime, file.stat().st_size)
        id_message = await runtime.sandbox.contact_send(
            instance,
            from_chat,
            file=inbound,
            caption=caption,
            sender_name=sender_name,
            type_message=filenames.type_message_for(mime),
        )
        if settings.mirror_mode == "eager":
            await runtime.files.mirror_pending()
        return id_message

    id_message = _run(settings, work)
    if as_json:
        sys.stdout.write(json.dumps({"idMessage": id_message, "chatId": from_chat}) + "\n")
    else:
        out.print(f"sent {id_message} from {from_chat} to {instance}")


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
    """Files and bytes by instance and state (remote, stored, evicted)."""
    settings = _load({"data_dir": data_dir}, config)
    rows = _run(settings, lambda rt: rt.retention.stats())
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table("instance", "state", "files", "bytes")
    for row in rows:
        table.add_row(str(row["instance_id"]), row["state"], str(row["files"]), str(row["bytes"]))
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


def main() -> None:
    """Console entry point."""
    app()
