"""The MAX Bot API connector (kind ``maxbot``): ``adapter.MaxBot`` over ``api.BotApi``, with
``updates`` turning the Bot API's updates into what the messenger port reports."""

from maxgate.upstream.maxbot.adapter import CAPABILITIES, MaxBot, upload_kind
from maxgate.upstream.maxbot.api import DEFAULT_BASE_URL, BotApi, BotApiError, TokenRevoked

__all__ = [
    "CAPABILITIES",
    "DEFAULT_BASE_URL",
    "BotApi",
    "BotApiError",
    "MaxBot",
    "TokenRevoked",
    "upload_kind",
]
