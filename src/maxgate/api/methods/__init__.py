"""The v3 methods; importing this package registers every one of them."""

from maxgate.api.methods import (
    account,
    journals,
    notifications,
    partner,
    queues,
    receiving,
    sending,
)

__all__ = ["account", "journals", "notifications", "partner", "queues", "receiving", "sending"]
