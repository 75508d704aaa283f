"""What a method's handler may be handed: the parts of a running gateway, by name.

A handler names what it uses as keyword-only parameters, and the dispatcher hands it exactly
those (``maxgate.api.routing``: ``method(...)`` reads the names once, at registration, and
refuses one that is not a field here)::

    @method("downloadFile", "POST", ...)
    async def download_file(call: Call, *, journal: Journal, files: Files, signer: LinkSigner):

So a handler's signature says which ports it touches, a test can call it with its own, and no
handler reaches the whole runtime. ``Services.of`` takes them from the ``Runtime`` once, when
the app starts; the app keeps them in ``app.state.services``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from maxgate.blobs import BlobStore
from maxgate.domain.files import Files
from maxgate.domain.instances import Instances
from maxgate.domain.journal import Journal
from maxgate.domain.links import LinkSigner
from maxgate.domain.messenger import Upstream
from maxgate.domain.notifications import Notifications
from maxgate.domain.outbox import Outbox
from maxgate.domain.records import Instance
from maxgate.net.client import OutboundClient
from maxgate.net.urlguard import UrlGuard
from maxgate.runtime import Runtime
from maxgate.settings import Settings
from maxgate.upstream.router import Upstreams
from maxgate.upstream.sandbox import Sandbox


@dataclasses.dataclass(frozen=True, slots=True)
class Services:
    """The parts a handler may name (each field is a keyword-only parameter it can take)."""

    settings: Settings
    instances: Instances
    journal: Journal
    notifications: Notifications
    outbox: Outbox
    files: Files
    blobs: BlobStore
    signer: LinkSigner
    upstream: Upstream
    upstreams: Upstreams  # the adapter of each kind, and what each kind can do
    guard: UrlGuard
    sandbox: Sandbox
    http: Callable[[], OutboundClient]  # the guarded outbound client, made on first use
    # Makes an instance of any kind (a maxbot one with its token checked at MAX first).
    create_instance: Callable[..., Awaitable[tuple[Instance, str]]]
    # What each set of names hands a handler (routing.handing), filled on first use.
    handed: dict[tuple[str, ...], dict[str, Any]] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, runtime: Runtime) -> Services:
        """The services of ``runtime``."""
        return cls(
            settings=runtime.settings,
            instances=runtime.instances,
            journal=runtime.journal,
            notifications=runtime.notifications,
            outbox=runtime.outbox,
            files=runtime.files,
            blobs=runtime.blobs,
            signer=runtime.signer,
            upstream=runtime.upstream,
            upstreams=runtime.upstreams,
            guard=runtime.guard,
            sandbox=runtime.sandbox,
            http=lambda: runtime.http,
            create_instance=runtime.create_instance,
        )


NAMES = frozenset(field.name for field in dataclasses.fields(Services)) - {"handed"}
