"""Signed file links: HMAC bound to instance, file and expiry; per-instance keys; URL quoting."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from maxgate.domain.links import LinkSigner

KEY = "link-key-for-tests-0123456789abcdef"
BASE = "https://max.example.com/"


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(KEY, BASE)


def _parts(url: str) -> tuple[list[str], int, str]:
    parsed = urlsplit(url)
    query = parse_qs(parsed.query, strict_parsing=True)
    return parsed.path.split("/"), int(query["exp"][0]), query["sig"][0]


def test_a_signed_link_verifies(signer: LinkSigner) -> None:
    url = signer.url(3100000001, "fileid_abc", "report.pdf", 1_900_000_000)
    assert url.startswith("https://max.example.com/files/3100000001/fileid_abc/report.pdf?")
    path, exp, sig = _parts(url)
    assert path == ["", "files", "3100000001", "fileid_abc", "report.pdf"]
    assert exp == 1_900_000_000
    assert signer.verify(3100000001, "fileid_abc", exp, sig)
    assert sig == signer.signature(3100000001, "fileid_abc", exp)
    assert "=" not in sig and "+" not in sig and "/" not in sig  # URL-safe, no padding


def test_signatures_are_stable_across_signers_with_the_same_key() -> None:
    one = LinkSigner(KEY, BASE).signature(3100000001, "f", 100)
    two = LinkSigner(KEY, "http://127.0.0.1:7880").signature(3100000001, "f", 100)
    assert one == two
    assert LinkSigner("another key", BASE).signature(3100000001, "f", 100) != one


@pytest.mark.parametrize(
    ("instance_id", "file_id", "expires"),
    [
        (3100000002, "fileid_abc", 1_900_000_000),  # another instance
        (3100000001, "fileid_abd", 1_900_000_000),  # another file
        (3100000001, "fileid_abc", 1_900_000_001),  # a later expiry
        (3100000001, "fileid_abc", 1_899_999_999),  # an earlier expiry
    ],
)
def test_tampering_with_instance_file_or_expiry_fails(
    signer: LinkSigner, instance_id: int, file_id: str, expires: int
) -> None:
    sig = signer.signature(3100000001, "fileid_abc", 1_900_000_000)
    assert not signer.verify(instance_id, file_id, expires, sig)


def test_tampering_with_the_signature_fails(signer: LinkSigner) -> None:
    sig = signer.signature(3100000001, "fileid_abc", 1_900_000_000)
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    for bad in (flipped, sig[:-1], sig + "A", "", sig.upper() if sig.upper() != sig else sig[::-1]):
        assert not signer.verify(3100000001, "fileid_abc", 1_900_000_000, bad)
    assert not signer.verify(3100000001, "fileid_abc", 1_900_000_000, "ünïcode")


def test_per_instance_keys_differ(signer: LinkSigner) -> None:
    assert signer._instance_mac(3100000001).digest() != signer._instance_mac(3100000002).digest()
    # the same file id and expiry under two instances give unrelated signatures
    assert signer.signature(3100000001, "f", 5) != signer.signature(3100000002, "f", 5)


def test_the_key_is_not_in_the_repr(signer: LinkSigner) -> None:
    assert KEY not in repr(signer)
    assert "max.example.com" in repr(signer)


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("my report.pdf", "my%20report.pdf"),
        ("отчёт.pdf", "%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"),
        ("a/b\\c.txt", "a%2Fb%5Cc.txt"),
        ("x?y#z&w=1.txt", "x%3Fy%23z%26w%3D1.txt"),
        ("100%.png", "100%25.png"),
        ("", "file"),
    ],
)
def test_names_are_quoted_into_one_path_segment(signer: LinkSigner, name: str, quoted: str) -> None:
    url = signer.url(3100000001, "fid", name, 1_900_000_000)
    path, exp, sig = _parts(url)
    assert len(path) == 5  # the name never adds a path segment
    assert path[4] == quoted
    assert unquote(path[4]) == (name or "file")
    assert signer.verify(3100000001, "fid", exp, sig)  # the name is not signed


def test_the_signature_is_hmac_sha256_under_the_derived_instance_key(signer: LinkSigner) -> None:
    """The scheme links already handed out were signed with: they stay valid across versions."""
    instance_key = hmac.digest(KEY.encode(), b"instance:3100000001", hashlib.sha256)
    mac = hmac.digest(instance_key, b"3100000001/fileid_abc/1900000000", hashlib.sha256)
    expected = base64.urlsafe_b64encode(mac[:18]).decode()
    assert signer.signature(3100000001, "fileid_abc", 1_900_000_000) == expected
    assert signer.signature(3100000001, "fileid_abc", 1_900_000_000) == expected  # reused MAC
