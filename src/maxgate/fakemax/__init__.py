"""``maxgate.fakemax``: a fake of the MAX Bot API that follows its official OpenAPI schema, for
maxgate's tests and any MAX bot's CI (docs/fakemax.md).

It serves the Bot API (``/me``, ``/updates``, ``/subscriptions``, ``/uploads``, ``/messages``,
``/chats/…``, ``/videos/…``), the upload URLs and signed file links a real bot meets, and a
control API (``/_control/…``) through which a test plays the users. It imports nothing else of
maxgate, so it can run on its own.
"""

from maxgate.fakemax.app import app_from_environ, create_app
from maxgate.fakemax.calls import Exchange
from maxgate.fakemax.config import FakeMaxConfig
from maxgate.fakemax.server import FakeMax

__all__ = ["Exchange", "FakeMax", "FakeMaxConfig", "app_from_environ", "create_app"]
