"""The fake's framing against PyMax's own codec (``pymax/protocol/tcp``), both ways."""

from __future__ import annotations

import pytest
from pymax.protocol import OutboundFrame
from pymax.protocol.tcp import TcpProtocol

from maxgate.fakemax.web import frames
from maxgate.fakemax.web.frames import Compression


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("size", [0, 14, 15, 269, 270, 70_000])
def test_pymax_decodes_what_the_fake_encodes(compression: Compression, size: int) -> None:
    payload = {"text": "я" * size, "ids": [1, 2**62], "nested": {"flag": True, "none": None}}
    data = frames.encode(cmd=1, seq=513, opcode=64, payload=payload, compression=compression)
    frame = TcpProtocol().decode(data)
    assert (frame.cmd, frame.seq, frame.opcode) == (1, 513, 64)
    assert frame.payload == payload


def test_the_fake_decodes_what_pymax_encodes() -> None:
    outbound = OutboundFrame(ver=10, opcode=19, cmd=0, seq=7, payload={"token": "t", "n": -1})
    frame = frames.decode(TcpProtocol().encode(outbound))
    assert (frame.ver, frame.cmd, frame.seq, frame.opcode) == (10, 0, 7, 19)
    assert frame.payload == {"token": "t", "n": -1}


def test_int_keys_reach_pymax_as_strings() -> None:
    # TcpPayloadDecoder._normalize_keys: PyMax turns integer map keys into strings.
    data = frames.encode(cmd=1, seq=0, opcode=19, payload={"participants": {5: 1}})
    assert TcpProtocol().decode(data).payload == {"participants": {"5": 1}}


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x00",
        frames.HEADER.pack(10, 0, 0, 1, 5) + b"ab",
        frames.HEADER.pack(10, 0, 0, 1, 1) + b"\xc1",
    ],
)
def test_unreadable_frames_are_refused(data: bytes) -> None:
    with pytest.raises(frames.FrameError):
        frames.decode(data)
