"""File names and MIME types: guessing, made-up names, cleaning, message kinds."""

from __future__ import annotations

import re
import uuid

import pytest

from maxgate.domain.filenames import clean_name, guess_mime, made_up_name, type_message_for


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("report.pdf", None, "application/pdf"),
        ("REPORT.PDF", None, "application/pdf"),
        ("photo.jpg", "application/octet-stream", "image/jpeg"),  # the name wins
        ("voice.opus", None, "audio/ogg"),
        ("sticker.webp", None, "image/webp"),
        ("iphone.heic", None, "image/heic"),
        ("notes.txt", None, "text/plain"),
        ("clip.mp4", None, "video/mp4"),
        ("no-extension", "Image/PNG; charset=binary", "image/png"),
        ("no-extension", "nonsense", "application/octet-stream"),
        ("no-extension", None, "application/octet-stream"),
        ("", "audio/mpeg", "audio/mpeg"),
        ("archive.unknownext", None, "application/octet-stream"),
    ],
)
def test_guess_mime(name: str, declared: str | None, expected: str) -> None:
    assert guess_mime(name, declared) == expected


@pytest.mark.parametrize(
    ("mime", "ext"),
    [
        ("image/jpeg", ".jpg"),
        ("image/png", ".png"),
        ("application/pdf", ".pdf"),
        ("video/mp4", ".mp4"),
        ("text/plain; charset=utf-8", ".txt"),
    ],
)
def test_made_up_name_is_a_uuid_and_an_extension(mime: str, ext: str) -> None:
    name = made_up_name(mime)
    stem, dot, suffix = name.partition(".")
    assert dot and "." + suffix == ext
    assert str(uuid.UUID(stem)) == stem
    assert re.fullmatch(r"[0-9a-f-]{36}\.[a-z0-9]+", name)
    assert made_up_name(mime) != name  # fresh each time
    assert guess_mime(name) == mime.split(";")[0]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/to/file.txt", "file.txt"),
        ("C:\\Users\\me\\Desktop\\evil.exe", "evil.exe"),
        ("..", ""),
        (".", ""),
        ("dir/..", ""),
        ("..\\..\\", ""),
        ("a\x00b\nc\rd\te.txt", "abcde.txt"),
        ("\x1b[31mred\x1b[0m.txt", "[31mred[0m.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),  # bidi override is a control (Cf)
        ("  spaced name.doc  ", "spaced name.doc"),
        ("отчёт за май.pdf", "отчёт за май.pdf"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_name(raw: str | None, clean: str) -> None:
    assert clean_name(raw) == clean


@pytest.mark.parametrize("char", ["a", "я", "€", "😀"])
def test_clean_name_caps_at_255_bytes_on_a_character_boundary(char: str) -> None:
    cleaned = clean_name(char * 300 + ".txt")
    encoded = cleaned.encode("utf-8")
    assert len(encoded) <= 255
    assert len(encoded) > 255 - len(char.encode())  # cut no more than needed
    assert set(cleaned) == {char}


def test_clean_name_keeps_exactly_255_bytes() -> None:
    name = "a" * 251 + ".txt"
    assert clean_name(name) == name


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/jpeg", "imageMessage"),
        ("image/png", "imageMessage"),
        ("image/webp", "imageMessage"),
        ("video/mp4", "videoMessage"),
        ("audio/ogg", "audioMessage"),
        ("audio/mpeg", "audioMessage"),
        ("application/pdf", "documentMessage"),
        ("text/plain", "documentMessage"),
        ("application/octet-stream", "documentMessage"),
    ],
)
def test_type_message_for(mime: str, kind: str) -> None:
    assert type_message_for(mime) == kind
