"""The opcodes the web fake serves or pushes: the numbers of ``pymax/protocol/enums.py``
(``Opcode``), limited to what a ``WebClient`` connector uses."""

from __future__ import annotations

import enum


class Op(enum.IntEnum):
    """One opcode of MAX's user protocol."""

    PING = 1
    SESSION_INIT = 6  # the handshake: userAgent + deviceId
    LOGIN = 19  # log in with a token (WebSyncPayload); answers LoginResponse
    LOGOUT = 20  # asked by the client, or pushed by the server when it ends a session
    CONTACT_INFO = 32
    CONTACT_LIST = 36
    CONTACT_INFO_BY_PHONE = 46
    CHAT_INFO = 48
    CHAT_HISTORY = 49
    CHAT_MARK = 50
    CHATS_LIST = 53
    MSG_SEND = 64
    MSG_GET = 71
    PHOTO_UPLOAD = 80
    VIDEO_UPLOAD = 82
    VIDEO_PLAY = 83
    FILE_UPLOAD = 87
    FILE_DOWNLOAD = 88
    AUTH_LOGIN_CHECK_PASSWORD = 115  # the 2FA answer after LOGIN_BY_QR
    NOTIF_MESSAGE = 128
    NOTIF_MARK = 130
    NOTIF_ATTACH = 136  # an upload is processed ("ready")
    NOTIF_MSG_DELETE = 142
    GET_QR = 288
    GET_QR_STATUS = 289
    LOGIN_BY_QR = 291
