"""Sample media the sandbox serves at `/_sandbox/media/{name}` and its emulators check.

`*.jpg` / `*.jpeg`: a small generated JPEG (a flag-red card); a name starting with
`oversize` is a JPEG of noise over 1 MB (what Viber and Zalo refuse); `*.png`: a PNG (not a
JPEG); `*.mp4`: bytes that look like an MP4 (the YouTube emulator stores, never decodes).
"""

from __future__ import annotations

import io
import random
from functools import cache

# Not a playable video: YouTube's emulator stores bytes, it does not decode them.
SAMPLE_VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64


@cache  # made once: encoding is the slow part of serving them
def sample_jpeg(width: int = 1200, height: int = 800) -> bytes:
    """A small generated JPEG (a flag-red card) for demos and tests."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (218, 37, 29))
    ImageDraw.Draw(image).rectangle(
        (width // 3, height // 3, 2 * width // 3, 2 * height // 3), fill=(255, 205, 0)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


@cache
def oversize_jpeg() -> bytes:
    """A valid JPEG of random noise, well over 1 MB (noise does not compress)."""
    from PIL import Image

    side = 1200
    noise = random.Random(12).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(out, "JPEG", quality=95)
    return out.getvalue()


@cache
def sample_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 90, 170)).save(out, "PNG")
    return out.getvalue()


def media_bytes(name: str) -> tuple[bytes, str] | None:
    """(content, media type) of a sample by file name, or None when there is none."""
    if name.endswith((".jpg", ".jpeg")):
        data = oversize_jpeg() if name.startswith("oversize") else sample_jpeg()
        return data, "image/jpeg"
    if name.endswith(".png"):
        return sample_png(), "image/png"
    if name.endswith(".mp4"):
        return SAMPLE_VIDEO, "video/mp4"
    return None
