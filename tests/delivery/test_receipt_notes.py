"""What a channel says beside a send that did not fail it is stored with the delivery: Zalo OA
broadcasts against the sandbox emulator — the first article's broadcast id, then the month's
quota used up (Zalo's -211): both deliveries `sent`, the notes stored, and shown by the post
view, `publisher report receipts` and the TUI's post detail."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from delivery_fakes import T0
from rich.console import Console

from channels.base import Credentials, InMemoryTokenStore, Problem, Receipt, Severity
from channels.sandbox import make_app
from channels.zalo import ZaloChannel, ZaloSettings
from publisher import report_output
from publisher.delivery.jobs import receipt_notes
from publisher.delivery.prepare import AdaptingPreparer
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import ArticleKind, ChannelAccount, Platform, Role, RoleGrant, Unit, User
from publisher.reports import load_receipts
from publisher.service import DeliveryService
from publisher.settings.workflow import ScheduleFile
from publisher.store.broadcast_book import SqlBroadcastBook
from publisher.store.delivery_sql import ARTICLE, D
from publisher.store.sql import SqlRepository
from publisher.views import Views
from tui.screens.post import PostScreen

SANDBOX = "http://sandbox"
ZALO = ChannelAccount("01.zalo", "01", Platform.ZALO, "oa51", "Hà Nội")
# a minted pair comes from the sandbox's OAuth on first use (channels.zalo)
ZALO_CREDENTIALS = Credentials(
    "oa51.a0", {"refresh_token": "oa51.r0", "app_id": "app51", "secret_key": "s"}
)
ADMIN = User("admin", "Quản trị", (RoleGrant("CP", Role.ADMIN),))


def new_article(engine: sa.Engine, n: int, title: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(ARTICLE)
                .values(
                    guid=f"receipt-{n}",
                    url=f"https://hanoi.gov.vn/tin/{n}",
                    canonical_url=f"https://hanoi.gov.vn/tin/{n}",
                    content_hash=f"h{n}",
                    title=title,
                    summary="Tóm tắt bài viết.",
                    body_html="<p>Nội dung bài viết về chuyển đổi số.</p>",
                    body_text="Nội dung bài viết về chuyển đổi số.",
                    published_at=T0,
                    images=[],
                    # a directive goes out without an approval step
                    kind=ArticleKind.DIRECTIVE.value,
                    unit_code="CP",
                    created_at=T0,
                )
                .returning(ARTICLE.c.id)
            ).scalar_one()
        )


async def test_a_broadcast_over_quota_leaves_the_delivery_sent_with_the_warning_stored(
    db: sa.Engine,
) -> None:
    repo = SqlRepository(db)
    repo.upsert_units([Unit("CP", "Cổng TTĐT", "central"), Unit("01", "Hà Nội", "province", "CP")])
    repo.upsert_accounts([ZALO])
    service = DeliveryService(
        db, repo, schedule_rules=ScheduleFile(stagger_seconds=0, default={"quiet_hours": []})
    )
    for n, title in enumerate(("Tin thứ nhất", "Tin thứ hai")):
        service.route_article(new_article(db, n, title))
    sandbox = make_app()
    sandbox.state.sandbox.settings.zalo_broadcasts_per_month = 1  # the OA's real package
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as http:
        zalo = ZaloChannel(
            http,
            f"{SANDBOX}/zalo",
            settings=ZaloSettings(verify_delay_s=0, verify_attempts=3),
            # configured above what Zalo grants: Zalo's -211 is what tells
            broadcasts={ZALO.id: 4},
            broadcast_book=SqlBroadcastBook(db),
            token_store=InMemoryTokenStore(),
            clock=sandbox.state.sandbox.now,
        )
        channels = {"zalo": zalo}
        worker = Worker(
            service.store,
            channels,
            {ZALO.id: ZALO}.get,
            lambda account: ZALO_CREDENTIALS,
            WorkerConfig(owner="w", request_timeout_s=10),
            prepare=AdaptingPreparer(db, channels, repo.get_unit),
        )
        await worker.run(until_idle=True)
    assert len(sandbox.state.sandbox.ledger) == 2  # both articles published
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(D.c.id, D.c.post_id, D.c.state, D.c.last_error, D.c.receipt_notes).order_by(
                D.c.sent_at, D.c.id
            )
        ).all()
    assert [r.state for r in rows] == ["sent", "sent"]
    assert [r.last_error for r in rows] == [None, None]
    first, second = (r.receipt_notes for r in rows)
    assert [(n["severity"], n["code"]) for n in first] == [("info", "broadcast_sent")]
    assert "message_id" in first[0]["message"]
    assert [(n["severity"], n["code"]) for n in second] == [("warning", "broadcast_quota_used")]
    assert second[0]["message"].startswith("Đã dùng hết 4 lượt broadcast")  # Vietnamese first

    # the post view (the TUI's post detail reads it)
    detail = Views(db).post(ADMIN, rows[1].post_id)
    assert detail is not None
    [delivery] = detail.deliveries
    [note] = delivery.receipt_notes
    assert (note.severity, note.code, note.is_warning) == ("warning", "broadcast_quota_used", True)
    shown = render(PostScreen.receipt_lines(detail))
    assert "Zalo OA · 01.zalo: ⚠ Đã dùng hết 4 lượt broadcast" in shown

    # the report, everything and warnings only
    now = sandbox.state.sandbox.now()
    since, until = T0 - timedelta(days=400), now + timedelta(days=400)
    report = load_receipts(db, since, until)
    assert [f.notes[0].code for f in report.deliveries] == [
        "broadcast_quota_used",
        "broadcast_sent",
    ]  # newest first
    warnings = load_receipts(db, since, until, warnings_only=True)
    assert [f.delivery_id for f in warnings.deliveries] == [rows[1].id]
    as_json = json.loads(report_output.to_json_text(warnings))
    assert as_json["deliveries"][0]["notes"][0]["code"] == "broadcast_quota_used"
    table = render([report_output.receipts_renderable(warnings)])
    assert "cảnh báo · warning" in table
    assert "broadcast_quota_used: Đã dùng hết" in table


def render(parts: list[object]) -> str:
    console = Console(width=400, record=True)
    for part in parts:
        console.print(part)
    return console.export_text()


def test_notes_are_redacted_and_none_when_the_receipt_has_no_problems() -> None:
    from publisher.redact import MASK

    assert receipt_notes(Receipt("1")) is None
    said = Problem(Severity.WARNING, "x", "Zalo: refused ?access_token=oa51.a7 for the OA")
    assert receipt_notes(Receipt("1", problems=(said,))) == [
        {
            "severity": "warning",
            "code": "x",
            "message": f"Zalo: refused ?access_token={MASK} for the OA",
        }
    ]


def test_a_stored_note_not_in_the_written_form_is_an_error_naming_the_delivery() -> None:
    from publisher.domain import receipt_notes_from_json

    assert receipt_notes_from_json(None, "delivery 7") == ()
    with pytest.raises(ValueError, match=r"delivery 7: receipt_notes\[0\] needs severity"):
        receipt_notes_from_json([{"code": "x"}], "delivery 7")
    with pytest.raises(ValueError, match=r"delivery 7: receipt_notes is not a list"):
        receipt_notes_from_json("null", "delivery 7")
