"""``maxgate instance create --upstream maxuser``: the warning, and an instance that waits for
its QR login."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from maxgate.settings import load_settings
from maxgate.store import maxuser as store
from maxgate.store.database import Database

MAXGATE = [sys.executable, "-m", "maxgate"]


async def test_instance_create_warns_and_waits_for_a_login(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAXGATE_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    made = subprocess.run(
        [
            *MAXGATE,
            "instance",
            "create",
            "--upstream",
            "maxuser",
            "--json",
            "--data-dir",
            str(home),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)  # the warning goes to standard error, not into the JSON
    warning = " ".join(made.stderr.split())
    assert "MAX's terms of use forbid scripts and clients it has not permitted" in warning
    assert "accounts driven by unofficial clients have been banned" in warning

    settings = load_settings(overrides={"data_dir": str(home)}, environ={})
    db = Database(settings.resolved_database_url)
    try:
        [account] = await store.live(db)
    finally:
        await db.close()
    assert account.instance_id == info["idInstance"]
    assert account.session is None and account.state == "notAuthorized"
