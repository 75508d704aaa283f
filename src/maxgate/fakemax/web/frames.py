"""The frames of MAX's user protocol, as PyMax 2.5.0 packs and unpacks them.

Read from ``pymax/protocol/tcp/framing.py`` (``TcpPacketFramer``), ``payload.py``
(``MsgpackPayloadCodec``, ``TcpPayloadDecoder``) and ``compression.py``
(``Lz4BlockCompression``, ``ZstdCompression``). The ``WebClient`` sends these same binary
frames, one per WebSocket message (``transport/websocket.py``, ``connection/readers/ws.py``):
the JSON ``WsProtocol`` of older releases is no longer used.

A frame is a 10-byte big-endian header ``>BBHHI`` (``ver``, ``cmd``, ``seq``, ``opcode``, and
8 bits of compression flags over a 24-bit payload length) and a msgpack payload. Flags ``0xFF``
mean zstd, any other non-zero value an LZ4 block; PyMax never compresses what it sends. The
server answers a request with ``cmd`` 1 (or 3 for an error) and the request's ``seq``, and
pushes events with ``cmd`` 0: PyMax's ``EventResolver`` (``dispatch/mapping.py``) dispatches
only ``cmd == Command.REQUEST`` frames, so a pushed event with ``cmd`` 2 would never reach a
handler.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Any

import msgspec

HEADER = struct.Struct(">BBHHI")
VERSION = 10  # TcpProtocol.version
MAX_PAYLOAD = 0x00FFFFFF  # 24 bits of length
ZSTD_FLAG = 0xFF
LZ4_FLAG = 0x01
WRAPPED_VALUE_EXT = 1  # MsgpackPayloadCodec.WRAPPED_VALUE_EXT_CODE


class Cmd(enum.IntEnum):
    """``pymax.protocol.enums.Command``."""

    REQUEST = 0  # also every event the server pushes
    RESPONSE = 1
    EVENT = 2  # named by PyMax, never dispatched by it
    ERROR = 3


class Compression(enum.Enum):
    """How the fake compresses the payloads it sends (PyMax decodes all three)."""

    NONE = "none"
    LZ4 = "lz4"
    ZSTD = "zstd"


class FrameError(ValueError):
    """A frame the fake cannot read: short, truncated or not msgpack."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    cmd: int
    seq: int
    opcode: int
    payload: dict[str, Any]
    ver: int = VERSION


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == WRAPPED_VALUE_EXT:
        return msgspec.msgpack.decode(bytes(data), ext_hook=_ext_hook)
    return msgspec.msgpack.Ext(code, bytes(data))


def decode(data: bytes) -> Frame:
    """A frame as the client sent it (uncompressed, as PyMax always sends)."""
    if len(data) < HEADER.size:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the 10-byte header")
    ver, cmd, seq, opcode, packed = HEADER.unpack_from(data, 0)
    flags, length = packed >> 24, packed & MAX_PAYLOAD
    body = data[HEADER.size : HEADER.size + length]
    if len(body) != length:
        raise FrameError(f"frame announces {length} payload bytes, carries {len(body)}")
    if flags:
        raise FrameError(f"frame compressed with flags {flags:#x}: PyMax never does that")
    try:
        payload = msgspec.msgpack.decode(body, ext_hook=_ext_hook) if body else {}
    except msgspec.DecodeError as exc:
        raise FrameError(f"payload of opcode {opcode} is not msgpack: {exc}") from exc
    if not isinstance(payload, dict):
        raise FrameError(f"payload of opcode {opcode} is a {type(payload).__name__}, not a map")
    return Frame(cmd=cmd, seq=seq, opcode=opcode, payload=payload, ver=ver)


def lz4_block(data: bytes) -> bytes:
    """``data`` as one LZ4 block of literals only: valid LZ4 (a last sequence carries no
    match), which is all ``Lz4BlockCompression.decompress`` needs to prove it reads the flag."""
    out = bytearray()
    length = len(data)
    if length < 15:
        out.append(length << 4)
    else:
        out.append(0xF0)
        rest = length - 15
        while rest >= 255:
            out.append(255)
            rest -= 255
        out.append(rest)
    out += data
    return bytes(out)


def _zstd(data: bytes) -> bytes:
    import zstandard  # PyMax's own dependency (the max-user extra)

    return zstandard.ZstdCompressor().compress(data)


def encode(
    *,
    cmd: int,
    seq: int,
    opcode: int,
    payload: dict[str, Any] | None,
    compression: Compression = Compression.NONE,
    min_bytes: int = 1,
) -> bytes:
    """A frame to send; ``compression`` applies to payloads of ``min_bytes`` or more."""
    body = msgspec.msgpack.encode(payload) if payload is not None else b""
    flags = 0
    small = len(body) < max(1, min_bytes)
    if not small and compression is Compression.LZ4:
        body, flags = lz4_block(body), LZ4_FLAG
    elif not small and compression is Compression.ZSTD:
        body, flags = _zstd(body), ZSTD_FLAG
    if len(body) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(body)} bytes does not fit the 24-bit length")
    return HEADER.pack(VERSION, cmd, seq & 0xFFFF, opcode, (flags << 24) | len(body)) + body
