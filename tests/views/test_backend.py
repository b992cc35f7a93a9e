"""The TUI's real backend over the world: previews counted as each platform counts, and the
coverage screen scoped to the user's units."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from world import DIRECTIVE, WORKER_NOW, World

from channels.telegram import TelegramChannel
from channels.x import XChannel
from channels.youtube import YouTubeChannel
from publisher.domain import Platform, Role, RoleGrant, User
from publisher.text import utf8_length, utf16_length, x_weighted_length
from tui.backend import CoreBackend, platform_length
from tui.ports import ActionRefused


def test_platform_lengths() -> None:
    vietnamese = "Chỉ thị về chuyển đổi số"  # ỉ ị ề ể ổ ố are outside U+0000–U+10FF: X weighs 2
    assert platform_length("x", {}, vietnamese) == x_weighted_length(vietnamese) == 30
    assert len(vietnamese) == 24
    link = "Xem https://chinhphu.vn/" + "a" * 60
    assert platform_length("x", {}, link) == 4 + 23  # any URL counts 23 on X
    emoji = "Bão 🌀"
    assert platform_length("telegram", {}, emoji) == utf16_length(emoji) == 6
    snippet = {"snippet": {"title": "Hội nghị", "description": "Đổi mới"}}
    assert platform_length("youtube", snippet, "Hội nghị\n\nĐổi mới") == utf8_length("Đổi mới")
    assert utf8_length("Đổi mới") == 12
    assert platform_length("facebook", {}, vietnamese) == 24


@pytest.fixture
def backend(world: World) -> CoreBackend:
    http = httpx.AsyncClient()
    channels = {
        Platform.X: XChannel(http, "http://127.0.0.1:9"),
        Platform.TELEGRAM: TelegramChannel(http, "http://127.0.0.1:9"),
        Platform.YOUTUBE: YouTubeChannel(http, "http://127.0.0.1:9"),
    }
    return CoreBackend(world.engine, world.service, channels)


def test_x_preview_counts_weighted(world: World, backend: CoreBackend) -> None:
    detail = backend.post(world.user("admin"), world.post_id(DIRECTIVE, "CP"))
    assert detail is not None
    previews = {p.platform: p for p in backend.previews(detail)}
    x, telegram = previews["x"], previews["telegram"]
    # Weighted: Vietnamese letters count 2, the link 23 — not UTF-16 units, not characters.
    assert x.length == x_weighted_length(x.text) == 103
    assert utf16_length(x.text) == len(x.text) == 114
    assert x.limit == 280
    assert x.length <= 280
    assert telegram.length == utf16_length(telegram.text)
    # The YouTube account gets no post without a video: no preview for it.
    assert "youtube" not in previews


def test_youtube_preview_counts_description_bytes(world: World, backend: CoreBackend) -> None:
    detail = backend.post(world.user("admin"), world.post_id(DIRECTIVE, "CP"))
    assert detail is not None
    with_video = replace(
        detail,
        article=replace(detail.article, video="https://chinhphu.vn/video/hoi-nghi.mp4"),
        deliveries=(replace(detail.deliveries[0], platform="youtube", account_id="CP.youtube"),),
    )
    [preview] = backend.previews(with_video)
    assert preview.platform == "youtube"
    assert preview.payload is not None
    description = preview.payload["snippet"]["description"]  # type: ignore[index]
    assert preview.length == utf8_length(description) > len(description)
    assert preview.limit == 5000


def test_coverage_screen_is_scoped(world: World, backend: CoreBackend) -> None:
    directive = world.article_ids[DIRECTIVE]
    both = User(
        "hai.tinh", "Hai tỉnh", (RoleGrant("01", Role.APPROVER), RoleGrant("79", Role.APPROVER))
    )
    report = backend.coverage(both, directive, WORKER_NOW)
    codes = {u.unit.code for u in report.units}
    assert codes == {"01", "S01001", "S01002", "S01003", "79", "S79001", "S79002", "S79003"}
    everything = backend.coverage(world.user("admin"), directive, WORKER_NOW)
    assert len(everything.units) == 64
    with pytest.raises(ActionRefused, match="no article"):
        backend.coverage(both, 999_999, WORKER_NOW)


def test_telegram_album_preview_lists_every_photo(world: World, backend: CoreBackend) -> None:
    """The real Telegram adaptation of an article with four images is one media group: the
    preview carries the four, in order (the screen steps through them); one image stays
    one image."""
    detail = backend.post(world.user("admin"), world.post_id(DIRECTIVE, "CP"))
    assert detail is not None
    photos = tuple(f"https://baochinhphu.vn/anh-{n}.jpg" for n in range(1, 5))
    for images, expected in ((photos, photos), (photos[:1], photos[:1])):
        shown = replace(detail, article=replace(detail.article, images=images))
        telegram = next(p for p in backend.previews(shown) if p.platform == "telegram")
        assert telegram.images == expected
        assert telegram.image == photos[0]
        assert telegram.payload is not None
        assert ("photos" in telegram.payload) == (len(images) > 1)
