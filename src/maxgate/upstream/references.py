"""The sandbox's file references: which file, until when the reference is good, and the
message it came with (to resolve it again once it expired, as MAX's file URLs are through
their message)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlencode


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """A sandbox file reference: the file, until when the reference is good (None: always,
    the form of references made before they expired) and the message it came with."""

    file_ref: str
    expires: int | None = None
    id_message: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Read a reference made by ``str()`` (or a bare file reference)."""
        file_ref, _, query = text.partition("?")
        params = {key: values[0] for key, values in parse_qs(query).items()}
        expires = params.get("expires")
        return cls(
            file_ref,
            int(expires) if expires and expires.isdigit() else None,
            params.get("message"),
        )

    def __str__(self) -> str:
        if self.expires is None:
            return self.file_ref
        params: dict[str, str | int] = {"expires": self.expires}
        if self.id_message is not None:
            params["message"] = self.id_message
        return f"{self.file_ref}?{urlencode(params)}"
