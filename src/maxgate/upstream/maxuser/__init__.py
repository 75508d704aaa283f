"""The MAX user-account connector (kind ``maxuser``): ``adapter.MaxUser`` in the gateway, the
PyMax ``WebClient`` of each account in a worker process (``worker``, ``account``), the two
joined by ``channel``. Only the worker imports PyMax (the ``max-user`` extra)."""

from maxgate.upstream.maxuser.adapter import CAPABILITIES, SEND_INTERVAL, WARNING, MaxUser

__all__ = ["CAPABILITIES", "SEND_INTERVAL", "WARNING", "MaxUser"]
