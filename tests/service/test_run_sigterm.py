"""`publisher run` as an operator runs it: serves health and metrics, delivers, and on SIGTERM
stops with no delivery left `claimed` or `sending`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from channels.sandbox import make_app as make_sandbox
from publisher.demo.run import LoopbackServer

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publisher(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from publisher.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def status(env: dict[str, str]) -> dict[str, int]:
    result = publisher(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    deliveries: dict[str, int] = json.loads(result.stdout)["deliveries"]
    return deliveries


@pytest.fixture
def sandbox() -> Iterator[str]:
    # Every platform answers after 0.4 s, so sends are in flight when SIGTERM arrives.
    platforms = ("facebook", "zalo", "viber", "telegram", "x", "youtube")
    slow = {
        "faults": [{"platform": p, "kind": "delay", "rate": 1.0, "delay": 0.4} for p in platforms]
    }
    server = LoopbackServer(Starlette(routes=[Mount("/", make_sandbox(fault_spec=slow))]))
    url = server.start()
    yield url
    server.stop()


@pytest.mark.slow
def test_sigterm_leaves_nothing_claimed_or_sending(tmp_path: Path, sandbox: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    port = free_port()
    # Viber posts need a webhook: the sandbox calls this service back at its public URL.
    env.update(
        PUBLISHER_HOME=str(tmp_path / "home"),
        PUBLISHER_SANDBOX_URL=sandbox,
        PUBLISHER_PUBLIC_URL=f"http://127.0.0.1:{port}",
    )
    assert publisher(env, "init").returncode == 0
    (tmp_path / "home" / "config" / "schedule.toml").write_text(
        # Spread over two minutes, so work remains when SIGTERM comes even on a loaded machine
        # (with 20 s a busy machine sent everything before the first status check).
        "stagger_seconds = 120\nurgent_stagger_seconds = 120\n[default]\nquiet_hours = []\n",
        encoding="utf-8",
    )
    directive = next(SAMPLES.glob("directive-*.json"))
    ingested = publisher(env, "ingest", str(directive), "--kind", "directive", "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["deliveries"] > 150

    service = subprocess.Popen(
        [sys.executable, "-c", "from publisher.cli import main; main()", "run",
         "--port", str(port), "--workers", "2", "--log-json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).json()["status"] == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("publisher run did not answer /healthz")
        while status(env)["sent"] < 10 and time.monotonic() < deadline:
            time.sleep(0.3)
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        assert 'publisher_deliveries{channel="zalo",state="sent"}' in metrics
        assert "publisher_send_seconds_count" in metrics
        before = status(env)
        unfinished = before["pending"] + before["claimed"] + before["sending"]
        assert unfinished > 0, "stop it while work remains, or the test proves nothing"
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, output
    assert '"stopped cleanly"' in output or "stopped cleanly" in output
    for line in output.splitlines():
        json.loads(line)  # --log-json: every line is one JSON object
    after = status(env)
    assert after["claimed"] == 0
    assert after["sending"] == 0
    assert after["sent"] >= before["sent"]
    assert after["failed"] == 0  # Viber included: its webhook was set through this service
