"""The v3 methods; importing this package registers every one of them."""

from maxgate.api.methods import (
    account,
    forwarding,
    journals,
    notifications,
    partner,
    queues,
    receiving,
    sending,
    service,
)

__all__ = [
    "account",
    "forwarding",
    "journals",
    "notifications",
    "partner",
    "queues",
    "receiving",
    "sending",
    "service",
]
