"""``maxgate.fakemax.web``: a fake of MAX's web (user-account) protocol, the one PyMax's
``WebClient`` speaks (docs/fakemax.md, "The web protocol"): a WebSocket carrying PyMax's binary
frames (``frames.py``), QR login with 2FA, sessions that MAX can revoke, dialogs, messages
with files, photos and videos, temporary download URLs, upload slots and their ready events.

Every shape it sends is checked by the real PyMax in ``tests/fakemax/web/``; each module says
which PyMax 2.5.0 module it was read from. It needs the ``max-user`` extra (aiohttp, zstandard
and msgpack come with ``maxapi-python``) and imports nothing else of maxgate.
"""

try:
    from maxgate.fakemax.web.config import WebFakeConfig
    from maxgate.fakemax.web.server import WebFake
except ModuleNotFoundError as exc:  # aiohttp, msgpack or zstandard: the extra is missing
    raise ModuleNotFoundError(
        f"the fake of MAX's web protocol needs the max-user extra "
        f"(pip install 'maxgate[max-user]'): {exc}"
    ) from exc

__all__ = ["WebFake", "WebFakeConfig"]
