"""`publisher preview`, images, and the sandbox's control routes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sandbox_helpers import SAMPLES

from channels.media import FACEBOOK_PHOTO, ZALO_IMAGE, ImageCache, fit_image
from channels.registry import channel_names
from channels.sandbox.core import FaultSpecError, SandboxState, parse_faults
from publisher.cli.channels_cmd import load_article, preview_json

ROOT = Path(__file__).resolve().parents[2]


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "from publisher.cli.channels_cmd import register; import typer, sys; "
        "from publisher.cli.common import UserError; app = typer.Typer(); register(app)\n"
        "try:\n    app(sys.argv[1:], standalone_mode=False)\n"
        "except UserError as e:\n    print(*e.problems, sep='\\n', file=sys.stderr); sys.exit(2)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "preview", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize("name", channel_names())
def test_preview_prints_the_payload_for_every_sample(name: str) -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        result = json.loads(json.dumps(preview_json(load_article(str(path)), name, "51")))
        assert set(result) == {"channel", "unit", "payload", "problems"}
        assert result["channel"] == name
        assert result["unit"] == "51"
        if result["payload"] is None:
            assert any(p["severity"] == "error" for p in result["problems"])


def test_preview_command_prints_json() -> None:
    done = preview(
        str(SAMPLES / "video-hoi-nghi-truc-tuyen.json"), "--channel", "youtube", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["payload"]["snippet"]["categoryId"] == "25"


def test_preview_bad_input_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    done = preview(str(bad), "--channel", "x", "--json")
    assert done.returncode == 2
    assert "invalid JSON" in done.stderr
    missing = preview(str(tmp_path / "nope.json"), "--channel", "x")
    assert missing.returncode == 2
    sample = str(SAMPLES / "directive-chuyen-doi-so.json")
    wrong = preview(sample, "--channel", "myspace")
    assert wrong.returncode == 2
    assert "unknown channel" in wrong.stderr
    fields = tmp_path / "fields.json"
    fields.write_text(
        json.dumps(
            {
                "guid": "g",
                "url": "u",
                "title": "t",
                "published_at": "2026-11-14T09:05:00",
                "kind": "news",
            }
        )
    )
    done = preview(str(fields), "--channel", "x")
    assert done.returncode == 2
    assert "published_at: must carry a UTC offset" in done.stderr
    assert "kind:" in done.stderr


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 80).convert("RGBA").save(out, "PNG")
    return out.getvalue()


def test_fit_image_recompresses_only_when_needed() -> None:
    big = _png(3000, 2000)
    fitted = fit_image(big, ZALO_IMAGE)
    assert fitted.mime == "image/jpeg"
    assert len(fitted.data) <= ZALO_IMAGE.max_bytes
    assert max(fitted.width, fitted.height) <= ZALO_IMAGE.max_side
    small = fit_image(_png(200, 100), FACEBOOK_PHOTO)
    assert small.mime == "image/png"  # already fine: kept as it is


async def test_image_cache_fetches_once_and_broken_images_are_warnings() -> None:
    calls: list[str] = []
    sources = {"https://a/ok.png": _png(300, 200), "https://a/broken.jpg": b"\xff\xd8 not jpeg"}

    async def fetch(url: str) -> bytes:
        calls.append(url)
        if url not in sources:
            raise OSError("404")
        return sources[url]

    cache = ImageCache(fetch)
    for _ in range(3):
        image, problem = await cache.prepare("https://a/ok.png", ZALO_IMAGE)
        assert image is not None
        assert problem is None
    assert calls == ["https://a/ok.png"]
    assert cache.encodes == 1
    image, problem = await cache.prepare("https://a/broken.jpg", ZALO_IMAGE)
    assert image is None
    assert problem is not None
    assert problem.code == "image_broken"
    image, problem = await cache.prepare("https://a/missing.jpg", ZALO_IMAGE)
    assert problem is not None
    assert problem.code == "image_missing"
    assert problem.severity.value == "warning"


def test_fault_spec_is_validated() -> None:
    with pytest.raises(FaultSpecError, match=r"faults\[0\].kind"):
        parse_faults({"faults": [{"platform": "x", "kind": "meteor", "next": 1}]})
    with pytest.raises(FaultSpecError, match="exactly one"):
        parse_faults([{"platform": "x", "kind": "delay"}])
    with pytest.raises(FaultSpecError, match="unknown platform"):
        parse_faults([{"platform": "myspace", "kind": "delay", "next": 1}])


def test_rate_faults_are_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[bool]:
        state = SandboxState()
        state.set_faults(
            *parse_faults(
                {"seed": seed, "faults": [{"platform": "x", "kind": "server_error", "rate": 0.3}]}
            )
        )
        return [state.pick_fault("x", "a") is not None for _ in range(50)]

    assert draws(3) == draws(3)
    assert 5 <= sum(draws(3)) <= 30


async def test_control_routes(http: Any) -> None:
    bad = await http.post("/_sandbox/faults", json={"faults": [{"kind": "nope"}]})
    assert bad.status_code == 400
    await http.post("/_sandbox/faults", json=[{"platform": "x", "kind": "delay", "next": 1}])
    assert len((await http.get("/_sandbox/faults")).json()) == 1
    assert (await http.delete("/_sandbox/faults")).status_code == 204
    assert (await http.get("/_sandbox/faults")).json() == []
    assert (await http.get("/_sandbox/media/sample.jpg")).content.startswith(b"\xff\xd8")
    # strict X: a token its token endpoint did not mint is refused; a minted one posts
    refused = await http.post(
        "/x/2/tweets", json={"text": "Xin chào"}, headers={"authorization": "Bearer a"}
    )
    assert refused.status_code == 401
    minted = await http.post(
        "/x/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "a.r", "client_id": "c"},
    )
    bearer = {"authorization": f"Bearer {minted.json()['access_token']}"}
    await http.post("/x/2/tweets", json={"text": "Xin chào"}, headers=bearer)
    assert len((await http.get("/_sandbox/ledger")).json()) == 1
    assert (await http.delete("/_sandbox/ledger")).status_code == 204
    assert (await http.get("/_sandbox/ledger")).json() == []
