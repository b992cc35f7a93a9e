"""Images for posts: fetch through an injected function, fit each platform's limits, cache.

The fetcher is `Callable[[str], Awaitable[bytes]]` (the project's safe fetcher,
`publisher.fetch`, in production; a dict lookup in tests). Pillow re-encodes an image only
when it breaks a limit (format, bytes, pixels); results are cached by the SHA-256 of the
source bytes and the profile, and the URL → bytes step is cached too, so fan-out to many
units fetches and resizes each image once. A missing or broken image yields a warning
`Problem`, never an exception: the post goes out without it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from channels.base import Problem, Severity

Fetch = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class ImageProfile:
    name: str
    max_bytes: int
    max_side: int  # longest side in pixels
    formats: frozenset[str]  # Pillow format names accepted as they are


# Meta: Page photos "should be less than 4 MB" (the old 10 MB was the upload ceiling).
FACEBOOK_PHOTO = ImageProfile("facebook", 4 * 1024 * 1024 - 1, 4096, frozenset({"JPEG", "PNG"}))
ZALO_IMAGE = ImageProfile("zalo", 1024 * 1024, 2048, frozenset({"JPEG"}))
VIBER_PICTURE = ImageProfile("viber", 1024 * 1024, 2048, frozenset({"JPEG"}))
TELEGRAM_PHOTO = ImageProfile("telegram", 10 * 1024 * 1024, 4096, frozenset({"JPEG", "PNG"}))
MAX_SOURCE_PIXELS = 60_000_000  # refuse decompression bombs before decoding


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes
    mime: str
    width: int
    height: int
    source_sha256: str

    @property
    def extension(self) -> str:
        return "png" if self.mime == "image/png" else "jpg"


class ImageError(ValueError):
    pass


def fit_image(source: bytes, profile: ImageProfile) -> PreparedImage:
    """Pure: the source bytes as they are if they fit `profile`, else a re-encoded JPEG."""
    digest = hashlib.sha256(source).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(source))
            image: Image.Image = opened
            if image.width * image.height > MAX_SOURCE_PIXELS:
                raise ImageError(f"image too large to decode ({image.width}×{image.height})")
            image.load()
    except (
        UnidentifiedImageError,
        OSError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
        SyntaxError,
        ValueError,
    ) as error:
        raise ImageError(f"not a readable image: {error}") from error
    fmt = opened.format or ""
    if (
        fmt in profile.formats
        and len(source) <= profile.max_bytes
        and max(image.size) <= profile.max_side
    ):
        mime = "image/png" if fmt == "PNG" else "image/jpeg"
        return PreparedImage(source, mime, image.width, image.height, digest)
    if image.mode not in ("RGB", "L"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        rgba = image.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    else:
        image = image.convert("RGB")
    image.thumbnail((profile.max_side, profile.max_side), Image.Resampling.LANCZOS)
    while True:
        for quality in (88, 80, 72, 64, 56, 48, 40):
            out = io.BytesIO()
            image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
            if out.tell() <= profile.max_bytes:
                return PreparedImage(
                    out.getvalue(), "image/jpeg", image.width, image.height, digest
                )
        if min(image.size) < 64:
            raise ImageError(f"cannot fit under {profile.max_bytes} bytes")
        image = image.resize(
            (image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.LANCZOS
        )


class ImageCache:
    """Fetch once per URL, fit once per (content, profile)."""

    def __init__(self, fetch: Fetch, max_entries: int = 256) -> None:
        self.fetch = fetch
        self.max_entries = max_entries
        self._sources: dict[str, bytes] = {}
        self._fitted: dict[tuple[str, str], PreparedImage] = {}
        self.fetches = 0
        self.encodes = 0

    async def prepare(
        self, url: str, profile: ImageProfile
    ) -> tuple[PreparedImage | None, Problem | None]:
        source = self._sources.get(url)
        if source is None:
            try:
                self.fetches += 1
                source = await self.fetch(url)
            except Exception as error:  # any fetch failure: the post goes without the image
                return None, Problem(
                    Severity.WARNING,
                    "image_missing",
                    f"Không tải được ảnh {url} (image not fetched: {error})",
                )
            if len(self._sources) >= self.max_entries:
                self._sources.pop(next(iter(self._sources)))
            self._sources[url] = source
        key = (hashlib.sha256(source).hexdigest(), profile.name)
        fitted = self._fitted.get(key)
        if fitted is None:
            try:
                self.encodes += 1
                fitted = fit_image(source, profile)
            except ImageError as error:
                return None, Problem(
                    Severity.WARNING, "image_broken", f"Ảnh hỏng {url} (broken image: {error})"
                )
            if len(self._fitted) >= self.max_entries:
                self._fitted.pop(next(iter(self._fitted)))
            self._fitted[key] = fitted
        return fitted, None
