"""`publisher run`'s HTTP surface takes Viber's webhook check over a real loopback connection:
the sandbox (served on loopback, calling back with real requests) sets the webhook only after
the service answered its signed `webhook` event, and then the post goes out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from channels.base import Credentials
from channels.sandbox import make_app as make_sandbox
from channels.viber import ViberChannel
from publisher.demo.run import LoopbackServer
from publisher.domain import ChannelAccount, Platform
from publisher.metrics import Metrics
from publisher.server import make_service_app
from publisher.store.engine import make_engine, upgrade
from publisher.viber_webhook import make_viber_webhook_app

ACCOUNT = ChannelAccount("01.viber", "01", Platform.VIBER, "vb01")
TOKEN = Credentials("vb01.sandbox-token")
NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)


@pytest.fixture
def servers(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    engine = make_engine(url)
    hooks = make_viber_webhook_app({ACCOUNT.id: ACCOUNT}.get, lambda a: TOKEN)
    service = LoopbackServer(
        make_service_app(engine, Metrics(engine, clock=lambda: NOW), None, lambda: NOW, hooks)
    )
    sandbox_app = make_sandbox()  # no callback transport: real requests
    sandbox = LoopbackServer(Starlette(routes=[Mount("/", sandbox_app)]))
    yield service.start(), sandbox.start(), sandbox_app
    sandbox.stop()
    service.stop()
    engine.dispose()


async def test_the_running_service_confirms_the_webhook_and_the_post_goes(servers) -> None:  # type: ignore[no-untyped-def]
    service_url, sandbox_url, sandbox_app = servers
    async with httpx.AsyncClient() as http:
        channel = ViberChannel(http, f"{sandbox_url}/viber", public_url=service_url)
        receipt = await channel.send(ACCOUNT, TOKEN, {"type": "text", "text": "Thông báo"})
        ledger = (await http.get(f"{sandbox_url}/_sandbox/ledger?platform=viber")).json()
    assert [e["id"] for e in ledger] == [receipt.remote_id]
    hooks = sandbox_app.state.sandbox.platform_state["viber"]["webhooks"]
    assert hooks == {"vb01": f"{service_url}/viber/webhook/01.viber"}
