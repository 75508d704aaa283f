"""``jpegThumbnail``: a small base64 JPEG preview of an image, computed once when stored."""

from __future__ import annotations

import base64
import io
import logging
import warnings

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

MAX_BYTES = 16 * 1024  # keeps webhook bodies small (spec §4.1)
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 50_000_000  # refuse decompression bombs well before Pillow's own limit
SIZES = (320, 240, 160, 96)


def thumbnail(data: bytes) -> str:
    """A base64 JPEG of at most 16 KB, or ``""`` when the bytes are not a readable image."""
    if len(data) > MAX_SOURCE_BYTES:
        return ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    return ""
                image.draft("RGB", (SIZES[0], SIZES[0]))  # fast JPEG downscale on decode
                rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):  # fmt: skip
        return ""
    for size in SIZES:
        for quality in (75, 60, 45):
            copy = rgb.copy()
            copy.thumbnail((size, size))
            out = io.BytesIO()
            copy.save(out, "JPEG", quality=quality, optimize=True)
            encoded = base64.b64encode(out.getvalue()).decode("ascii")
            if len(encoded) <= MAX_BYTES:
                return encoded
    return ""
