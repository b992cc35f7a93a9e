"""Where a person finds a recalled post to remove by hand: a Telegram message's t.me link comes
from the chat Telegram returned (a public channel's username, else a channel's internal id,
else none); a Viber message has no public link, and the manual-removal list (report, notice,
post view, TUI) says so with its message token — against the sandbox's Telegram and Viber."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa
from delivery_fakes import T0
from rich.console import Console
from starlette.applications import Starlette
from starlette.routing import Mount
from telegram import Chat, Message
from test_sandbox import SAMPLE, store_article

from channels.base import Credentials
from channels.registry import load_channels
from channels.sandbox import make_app
from channels.telegram import message_url
from channels.viber import ViberChannel
from publisher.delivery.prepare import AdaptingPreparer
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import (
    ChannelAccount,
    Platform,
    Role,
    RoleGrant,
    Unit,
    User,
    manual_removal_target,
)
from publisher.recall_notify import Removal, removal_notice
from publisher.report_output import recall_renderable
from publisher.reports import load_recall
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.delivery_sql import D
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.sql import SqlRepository
from publisher.viber_webhook import make_viber_webhook_app
from publisher.views import Views
from tui.screens.post import PostScreen

SANDBOX = "http://sandbox"
ADMIN = User("admin", "Quản trị", (RoleGrant("CP", Role.ADMIN),))
ACCOUNTS = [
    ChannelAccount("01.telegram", "01", Platform.TELEGRAM, "@kenh_hanoi"),
    ChannelAccount("01.telegram-rieng", "01", Platform.TELEGRAM, "-1001234567890"),
    ChannelAccount("01.viber", "01", Platform.VIBER, "vb1"),
]


# --- Telegram: the link from the chat Telegram returned ------------------------------------


def sent(chat: Chat, message_id: int = 42) -> Message:
    return Message(message_id, datetime(2026, 12, 4, tzinfo=UTC), chat)


def test_a_public_channel_links_by_its_username_even_when_configured_by_id() -> None:
    chat = Chat(-1001234567890, Chat.CHANNEL, username="thongtinhanoi")
    assert message_url(sent(chat)) == "https://t.me/thongtinhanoi/42"


def test_a_private_channel_links_by_its_internal_id() -> None:
    chat = Chat(-1001234567890, Chat.CHANNEL, title="Kênh nội bộ")
    assert message_url(sent(chat, 7)) == "https://t.me/c/1234567890/7"


@pytest.mark.parametrize(
    "chat",
    [Chat(-4012345, Chat.GROUP, title="Nhóm thường"), Chat(987654, Chat.PRIVATE)],
    ids=["basic group", "private chat"],
)
def test_a_chat_without_message_links_has_none(chat: Chat) -> None:
    assert message_url(sent(chat)) is None


# --- what the list says -------------------------------------------------------------------


def test_viber_says_there_is_no_public_link_and_names_the_token() -> None:
    said = manual_removal_target("viber", "5491128475830393125", None)
    assert said.startswith("Viber không có đường dẫn công khai")
    assert "message token 5491128475830393125" in said
    # a link stored for a Viber message is not one: the token is what names it
    assert manual_removal_target("viber", "549", "https://viber/5") == manual_removal_target(
        "viber", "549", None
    )
    assert "outcome was never known" in manual_removal_target("viber", None, None)


def test_telegram_gives_its_link_or_the_message_ids() -> None:
    assert manual_removal_target("telegram", "7,8", "https://t.me/kenh/7") == "https://t.me/kenh/7"
    said = manual_removal_target("telegram", "7,8", None)
    assert "no t.me link for this chat: message id(s) 7,8" in said
    assert "outcome was never known" in manual_removal_target("telegram", None, None)
    assert manual_removal_target("facebook", "1_2", "https://www.facebook.com/1_2") == (
        "https://www.facebook.com/1_2"
    )


# --- against the sandbox ------------------------------------------------------------------


def token_for(account: ChannelAccount) -> Credentials:
    if account.platform is Platform.TELEGRAM:
        return Credentials("123456:ABCdef")
    return Credentials(f"{account.external_id}.token")


def sandbox_for() -> Starlette:
    """The sandbox, with Viber's webhook check reaching the publisher's endpoint."""
    accounts = {a.id: a for a in ACCOUNTS}
    hooks = make_viber_webhook_app(accounts.get, token_for)
    return make_app(
        callback_transport=httpx.ASGITransport(app=Starlette(routes=[Mount("/viber", hooks)]))
    )


def run_worker(
    service: DeliveryService, repo: SqlRepository, engine: sa.Engine, sandbox: Starlette
) -> None:
    accounts = {a.id: a for a in ACCOUNTS}

    async def run() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
        ) as http:
            channels = {
                p.value: c
                for p, c in load_channels(http, SANDBOX).items()
                if p is Platform.TELEGRAM
            }
            channels["viber"] = ViberChannel(
                http, f"{SANDBOX}/viber", public_url="http://publisher"
            )
            worker = Worker(
                service.store,
                channels,
                accounts.get,
                token_for,
                WorkerConfig(owner="w", request_timeout_s=10),
                prepare=AdaptingPreparer(engine, channels, repo.get_unit),
                rng=random.Random(3),
                withdrawals=SqlRecallStore(service.store),
            )
            await worker.run(until_idle=True)

    asyncio.run(run())


def test_the_manual_removal_list_links_telegram_and_names_viber_tokens(db: sa.Engine) -> None:
    assert SAMPLE.is_file()
    repo = SqlRepository(db)
    repo.upsert_units([Unit("CP", "Cổng TTĐT", "central"), Unit("01", "Hà Nội", "province", "CP")])
    repo.upsert_users([ADMIN])
    repo.upsert_accounts(ACCOUNTS)
    service = DeliveryService(
        db, repo, schedule_rules=ScheduleFile(stagger_seconds=0, default={"quiet_hours": []})
    )
    article = store_article(db)
    service.route_article(article)
    sandbox = sandbox_for()
    run_worker(service, repo, db, sandbox)
    with db.connect() as conn:
        rows = {
            r.account_id: r
            for r in conn.execute(
                sa.select(D.c.account_id, D.c.state, D.c.remote_id, D.c.remote_url)
            )
        }
    assert {a: r.state for a, r in rows.items()} == dict.fromkeys(rows, "sent")
    public, private, viber = (rows[a.id] for a in ACCOUNTS)
    first = public.remote_id.split(",")[0]
    assert public.remote_url == f"https://t.me/kenh_hanoi/{first}"
    assert private.remote_url == f"https://t.me/c/1234567890/{private.remote_id.split(',')[0]}"
    assert viber.remote_url is None
    assert viber.remote_id

    service.recall("admin", article_id=article, reason="ban hành nhầm")
    run_worker(service, repo, db, sandbox)
    # Telegram deletes its messages; Viber cannot, a person must
    assert {(w.account_id, w.state) for w in load_recall(db, T0).withdrawals} == {
        ("01.telegram", "withdrawn"),
        ("01.telegram-rieng", "withdrawn"),
        ("01.viber", "needs_manual_removal"),
    }
    report = load_recall(db, T0)
    [manual] = report.manual
    assert (manual.account_id, manual.remote_id, manual.url) == ("01.viber", viber.remote_id, None)
    assert manual.target == manual_removal_target("viber", viber.remote_id, None)
    assert report.to_json()["needs_manual_removal"][0]["where"] == manual.target
    console = Console(width=400, record=True)
    console.print(recall_renderable(report))
    assert f"message token {viber.remote_id}" in console.export_text()

    notice = removal_notice(
        "Hà Nội",
        "01",
        [
            Removal(
                manual.delivery_id,
                report.recall.id,
                "01",
                "01.viber",
                "viber",
                manual.state,
                manual.url,
                manual.note,
                manual.remote_id,
            )
        ],
        (),
    )
    assert (
        f"(viber): Viber không có đường dẫn công khai; mã tin (message token) {viber.remote_id}"
        in (notice.text)
    )

    detail = next(
        d
        for d in (Views(db).post(ADMIN, pid) for pid in post_ids(db, article))
        if d is not None and d.withdrawals
    )
    [shown] = [w for w in detail.withdrawals if w.platform == "viber"]
    assert shown.target == manual.target
    console = Console(width=400, record=True)
    for line in PostScreen.recall_lines(detail):
        console.print(line)
    assert f"message token {viber.remote_id}" in console.export_text()


def post_ids(engine: sa.Engine, article: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(D.c.post_id).where(D.c.article_id == article)).scalars())
