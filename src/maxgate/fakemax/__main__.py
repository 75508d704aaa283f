"""``python -m maxgate.fakemax serve --port N [--host 127.0.0.1] [--tokens …]``: the fake on a
real socket, one granian worker (the fake's world lives in one process). Every setting of
``FakeMaxConfig`` is a flag, and a ``FAKEMAX_*`` variable."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from collections.abc import Sequence

from maxgate.fakemax.config import FakeMaxConfig, parse_value


def parser() -> argparse.ArgumentParser:
    """The command line, its flags derived from ``FakeMaxConfig``."""
    top = argparse.ArgumentParser(prog="python -m maxgate.fakemax")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake MAX Bot API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8090, help="port to listen on")
    serve.add_argument(
        "--web-port",
        type=int,
        default=None,
        help="also serve the fake of MAX's web protocol (PyMax's WebClient; the max-user "
        "extra) on ws://HOST:WEB_PORT/websocket, in a child process that ends with this one",
    )
    for field in dataclasses.fields(FakeMaxConfig):
        flag = "--" + field.name.replace("_", "-")
        serve.add_argument(flag, dest=field.name, default=None, help=field.metadata["help"])
    return top


def config_from_args(args: argparse.Namespace) -> FakeMaxConfig:
    """The config: flags over ``FAKEMAX_*`` variables over the defaults."""
    base = FakeMaxConfig.from_environ()
    changes = {}
    for field in dataclasses.fields(FakeMaxConfig):
        raw = getattr(args, field.name)
        if raw is not None:
            changes[field.name] = parse_value(field, raw)
    return dataclasses.replace(base, **changes)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve."""
    args = parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        sys.exit(f"fakemax: {exc}")

    os.environ.update(config.to_environ())
    web = None
    if args.web_port is not None:
        # Our own interpreter and an int port: nothing untrusted reaches the call.
        web = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "maxgate.fakemax.web",
                "serve",
                "--host",
                args.host,
                "--port",
                str(args.web_port),
            ]
        )
    print(f"fakemax: serving the MAX Bot API on http://{args.host}:{args.port}", flush=True)
    try:
        _serve(args.host, args.port)
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=10)


def _serve(host: str, port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "maxgate.fakemax.app:app_from_environ",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
