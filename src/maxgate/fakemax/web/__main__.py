"""``python -m maxgate.fakemax.web serve --port N [--host 127.0.0.1]``: the web fake on a real
socket until interrupted. Every setting of ``WebFakeConfig`` is a flag."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from maxgate.fakemax.web.config import WebFakeConfig


def parser() -> argparse.ArgumentParser:
    """The command line, its flags derived from ``WebFakeConfig``."""
    top = argparse.ArgumentParser(prog="python -m maxgate.fakemax.web")
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the fake MAX web protocol")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8091, help="port to listen on")
    for field in dataclasses.fields(WebFakeConfig):
        flag = "--" + field.name.replace("_", "-")
        kind: Any = type(field.default)
        serve.add_argument(
            flag, dest=field.name, type=kind, default=None, help=field.metadata["help"]
        )
    return top


async def _serve(host: str, port: int, config: WebFakeConfig) -> None:
    from maxgate.fakemax.web.server import WebFake

    fake = WebFake(config, host=host)
    await fake.start(port)
    print(f"fakemax: serving the MAX web protocol on {fake.ws_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve."""
    args = parser().parse_args(argv)
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(WebFakeConfig)
        if getattr(args, f.name) is not None
    }
    try:
        config = WebFakeConfig(**changes)
        if config.compression not in ("none", "lz4", "zstd"):
            raise ValueError(f"--compression must be none, lz4 or zstd, not {config.compression!r}")
    except ValueError as exc:
        sys.exit(f"fakemax web: {exc}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, config))


if __name__ == "__main__":
    main()
