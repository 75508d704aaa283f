"""Identifiers: instance tokens and their hashes, message ids, file ids, sandbox chat ids."""

from __future__ import annotations

import hashlib
import re
import types

import pytest

from maxgate.domain import ids


def test_instance_tokens_are_50_lowercase_hex_and_fresh() -> None:
    tokens = {ids.new_instance_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(re.fullmatch(r"[0-9a-f]{50}", token) for token in tokens)


def test_token_hash_and_match() -> None:
    token = ids.new_instance_token()
    stored = ids.token_hash(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert ids.token_matches(token, stored)
    assert not ids.token_matches(token[:-1], stored)
    assert not ids.token_matches(token.upper(), stored)
    assert not ids.token_matches("", stored)
    assert not ids.token_matches(token, "0" * 64)


def test_message_ids_are_digits_and_unique() -> None:
    made = [ids.new_message_id() for _ in range(500)]
    assert all(m.isdigit() for m in made)
    assert len(set(made)) == len(made)
    assert all(len(m) == len(made[0]) for m in made)  # 13 ms digits + 3 counter digits


def test_message_ids_increase_even_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = types.SimpleNamespace(time=lambda: 1_800_000_000.0)
    monkeypatch.setattr(ids, "time", frozen)
    made = [int(ids.new_message_id()) for _ in range(1001)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_file_ids_are_url_safe_and_unguessable() -> None:
    made = {ids.new_file_id() for _ in range(500)}
    assert len(made) == 500
    for file_id in made:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", file_id)  # 128 bits, base64url, no padding
        assert len(file_id) <= 32  # fits files.id


def test_sandbox_chat_ids_and_phones() -> None:
    first = ids.FIRST_INSTANCE_ID
    chat_ids = {ids.sandbox_chat_id(first + n) for n in range(1000)}
    assert len(chat_ids) == 1000
    assert all(re.fullmatch(r"[1-9]\d{7}", c) for c in chat_ids)  # 8 digits, like MAX's
    phones = {ids.sandbox_phone(first + n) for n in range(1000)}
    assert len(phones) == 1000
    assert all(str(p).startswith("7999") and len(str(p)) == 11 for p in phones)
