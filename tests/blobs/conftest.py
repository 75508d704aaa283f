"""Blob store fixtures: a local store under ``tmp_path`` and an S3 store on a moto server.

The moto server is started once per session with ``scripts/moto`` on a free port of
127.0.0.1 and stopped at the end, unless ``MAXGATE_TEST_S3_ENDPOINT`` names one to reuse.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from obstore.store import LocalStore, S3Store

from maxgate.blobs import BlobStore

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUCKET = "maxgate-test"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


@dataclass
class StoreCase:
    """A blob store under test, with a raw obstore handle on the same location."""

    kind: str
    url: str
    blobs: BlobStore
    raw: LocalStore | S3Store
    root: pathlib.Path | None = None
    endpoint: str | None = None
    prefix: str | None = None

    def pending_uploads(self) -> int:
        """Incomplete S3 multipart uploads under this store's prefix (hidden, not objects)."""
        if self.endpoint is None:
            return 0
        answer = _s3_client(self.endpoint).list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix)
        return len(answer.get("Uploads", []))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server with the test bucket."""
    endpoint = os.environ.get("MAXGATE_TEST_S3_ENDPOINT")
    port = None
    env = {**os.environ, "MAXGATE_MOTO_DIR": str(tmp_path_factory.mktemp("moto"))}
    if not endpoint:
        port = str(_free_port())
        started = subprocess.run(
            [ROOT / "scripts" / "moto", "start", port],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if started.returncode != 0:
            pytest.fail(f"scripts/moto could not start: {started.stderr}")
        endpoint = started.stdout.strip()
    try:
        _create_bucket(endpoint)
        yield endpoint
    finally:
        if port is not None:
            subprocess.run(
                [ROOT / "scripts" / "moto", "stop", port], env=env, check=True, timeout=30
            )


def _s3_client(endpoint: str) -> Any:
    import boto3  # installed with moto; only the fixtures need it

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    )


def _create_bucket(endpoint: str) -> None:
    client = _s3_client(endpoint)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)


def s3_url(endpoint: str, prefix: str, *, bucket: str = BUCKET) -> str:
    """An ``s3://`` blob store URL on the moto server, with credentials in the query."""
    query = "&".join(f"{k}={v}" for k, v in CREDENTIALS.items())
    return f"s3://{bucket}/{prefix}?endpoint={endpoint}&region=us-east-1&allow_http=true&{query}"


@pytest.fixture
def make_s3_url(s3_endpoint: str) -> Callable[..., str]:
    """Build ``s3://`` URLs on the moto server: ``make_s3_url(prefix, bucket=...)``."""
    return lambda prefix, **kwargs: s3_url(s3_endpoint, prefix, **kwargs)


def s3_case(endpoint: str) -> StoreCase:
    """A fresh prefix of the test bucket, so that tests do not see each other's objects."""
    prefix = f"t-{uuid.uuid4().hex}/blobstore"
    raw = S3Store(
        BUCKET,
        prefix=prefix,
        config={"endpoint": endpoint, "region": "us-east-1", **CREDENTIALS},  # type: ignore[typeddict-item]
        client_options={"allow_http": True},
    )
    url = s3_url(endpoint, prefix)
    return StoreCase("s3", url, BlobStore(url), raw, endpoint=endpoint, prefix=prefix)


def local_case(root: pathlib.Path) -> StoreCase:
    """A local store rooted in a directory that does not exist yet."""
    url = f"file://{root}"
    return StoreCase("local", url, BlobStore(url), LocalStore(root), root)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def case(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> StoreCase:
    """The same tests against a local store and an S3 store."""
    if request.param == "local":
        return local_case(tmp_path / "store")
    return s3_case(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def local(tmp_path: pathlib.Path) -> StoreCase:
    """A local store only."""
    return local_case(tmp_path / "store")


@pytest.fixture
def s3(s3_endpoint: str) -> StoreCase:
    """An S3 store only."""
    return s3_case(s3_endpoint)
