"""``_sync.py`` is generated from ``_async.py`` (scripts/unasync): the two clients cannot drift."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from maxgate.client import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "unasync"
SOURCE = ROOT / "src" / "maxgate" / "client" / "_async.py"
# The public names that differ (everything else is the same name, awaited or not).
ASYNC_TO_SYNC = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
SPECIAL = {"__init__", "__repr__", *ASYNC_TO_SYNC, *ASYNC_TO_SYNC.values()}


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("maxgate_scripts_unasync", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_committed_sync_client_is_what_unasync_generates() -> None:
    """Edit ``_async.py``, then run ``scripts/unasync``: this fails with the diff otherwise."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_stale_docstring_rewrite_is_an_error() -> None:
    """An edited docstring that a SYNC_DOCS entry no longer matches fails the generator,
    instead of leaving the blocking client with the asyncio client's words."""
    script = load_script()
    source = SOURCE.read_text(encoding="utf-8")
    edited = source.replace("An asyncio client of one", "An asyncio client for one", 1)
    assert edited != source
    with pytest.raises(script.StaleTableError, match="SYNC_DOCS"):
        script.generate(edited)


def public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if callable(member) and (not name.startswith("_") or name in SPECIAL)
    }


def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    async_methods, sync_methods = public(AsyncClient), public(Client)
    assert {ASYNC_TO_SYNC.get(name, name) for name in async_methods} == set(sync_methods)
    for name, method in async_methods.items():
        twin = sync_methods[ASYNC_TO_SYNC.get(name, name)]
        if name not in ("__init__", "__repr__"):
            assert inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method), name
        assert not inspect.iscoroutinefunction(twin) and not inspect.isasyncgenfunction(twin)
        params = inspect.signature(method).parameters.values()
        twin_params = inspect.signature(twin).parameters.values()
        assert [(p.name, p.kind, p.default) for p in params] == [
            (p.name, p.kind, p.default) for p in twin_params
        ], name
        assert bool(inspect.getdoc(method)) == bool(inspect.getdoc(twin)), name
