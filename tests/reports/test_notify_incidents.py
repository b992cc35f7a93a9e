"""Credential incidents with a moving clock, failure notices grouped per unit, real channels:
the sandbox's Telegram Bot API (in-process) and a small SMTP sink on 127.0.0.1."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header

import httpx
import pytest
from sqlmodel import Session, select

from channels.sandbox.app import make_app
from publisher.credential_health import AccountSnapshot, Problem, assess
from publisher.domain import Role, RoleGrant, User
from publisher.notify import (
    Directory,
    EmailTransport,
    Notice,
    Notifier,
    NotifyError,
    Recipient,
    TelegramTransport,
    build_notifier,
    credential_pass,
    directory_from_engine,
    failure_pass,
)
from publisher.settings.notify import Contact, EmailSettings, NotifyFile, TelegramSettings
from publisher.store.sql import SqlRepository
from publisher.store.tables import ChannelAccountRow, DeliveryRow, IncidentRow

HORIZON = timedelta(days=14)
CONTACTS = [
    Contact(user="admin_cp", email=["cp@example.gov.vn"], telegram_chat="-1001"),
    Contact(user="admin01", email=["hanoi@example.gov.vn"], telegram_chat="-1002"),
    Contact(user="editor01", email=["bientap.hanoi@example.gov.vn"]),
    Contact(user="editor_cp", email=["bientap.cp@example.gov.vn"]),
    Contact(unit="79", email=["hcm@example.gov.vn"]),
]


@dataclass
class Recording:
    """A transport that records notices; `fail` makes the next sends fail."""

    name: str = "recording"
    notices: list[Notice] = field(default_factory=list)
    fail: bool = False

    async def send(self, notice: Notice) -> None:
        if self.fail:
            raise NotifyError("recording: down")
        self.notices.append(notice)


def _add_people(engine) -> Directory:  # type: ignore[no-untyped-def]
    SqlRepository(engine).upsert_users(
        [
            User("admin_cp", grants=(RoleGrant("CP", Role.ADMIN),)),
            User("admin01", grants=(RoleGrant("01", Role.ADMIN),)),
            User("editor01", grants=(RoleGrant("01", Role.EDITOR),)),
            User("editor_cp", grants=(RoleGrant("CP", Role.EDITOR),)),
        ]
    )
    return directory_from_engine(engine)


def _set_account(engine, account_id: str, **values) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        row = session.get(ChannelAccountRow, account_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def test_assess_is_pure_and_complete(demo_db) -> None:  # type: ignore[no-untyped-def]
    now = demo_db.now
    accounts = [
        AccountSnapshot("a", "01", "facebook", "active", now + timedelta(days=3)),
        AccountSnapshot("b", "01", "zalo", "active", now - timedelta(hours=1)),
        AccountSnapshot("c", "01", "viber", "active", now + timedelta(days=15)),
        AccountSnapshot("d", "79", "telegram", "auth_failed", None, "Unauthorized"),
        AccountSnapshot("e", "79", "x", "disabled", now - timedelta(days=1)),
    ]
    got = [(f.account_id, f.problem) for f in assess(accounts, now, HORIZON)]
    assert got == [("a", Problem.EXPIRING), ("b", Problem.EXPIRED), ("d", Problem.AUTH_FAILED)]


async def test_expiry_alert_fires_once_per_incident_with_a_moving_clock(demo_db) -> None:  # type: ignore[no-untyped-def]
    engine, t0 = demo_db.engine, demo_db.t0
    directory = _add_people(engine)
    _set_account(engine, "00004.facebook", token_expires_at=t0 + timedelta(days=20))
    recording = Recording()
    notifier = Notifier([recording])

    async def check(day: float) -> int:
        before = len(recording.notices)
        await credential_pass(
            engine, notifier, directory, CONTACTS, t0 + timedelta(days=day), HORIZON
        )
        return len(recording.notices) - before

    assert await check(0) == 0  # 20 days left: outside the horizon
    assert await check(7) == 1  # 13 days left: the incident opens, one notice
    notice = recording.notices[-1]
    assert notice.unit_code == "00004"
    # The commune has no admin; its parent's (Hà Nội) admin is told.
    assert [r.name for r in notice.recipients] == ["admin01"]
    assert "00004.facebook" in notice.text
    assert await check(8) == 0  # still open: silence
    assert await check(21) == 0  # expired now, same incident: silence
    _set_account(engine, "00004.facebook", token_expires_at=t0 + timedelta(days=400))
    assert await check(22) == 0  # renewed: the incident closes
    assert await check(390) == 1  # expiring again: a new incident, a new notice
    with Session(engine) as session:
        incidents = session.exec(
            select(IncidentRow).where(IncidentRow.key == "token_expiry:00004.facebook")
        ).all()
    assert len(incidents) == 2
    assert incidents[0].closed_at == t0 + timedelta(days=22)
    assert incidents[1].closed_at is None


async def test_failed_notice_is_retried_and_auth_incidents_close(demo_db) -> None:  # type: ignore[no-untyped-def]
    engine, t0 = demo_db.engine, demo_db.t0
    directory = _add_people(engine)
    _set_account(engine, "01.zalo", status="auth_failed", status_reason="token revoked")
    recording = Recording(fail=True)
    notifier = Notifier([recording])
    first = await credential_pass(engine, notifier, directory, CONTACTS, t0, HORIZON)
    assert first.opened == 1
    assert len(first.failed_notices) == 1
    recording.fail = False
    await credential_pass(engine, notifier, directory, CONTACTS, t0 + timedelta(hours=1), HORIZON)
    assert len(recording.notices) == 1  # sent now that the channel works
    notice = recording.notices[0]
    assert sorted(r.name for r in notice.recipients) == ["admin01", "admin_cp"]
    assert "revoked" in notice.text
    await credential_pass(engine, notifier, directory, CONTACTS, t0 + timedelta(hours=2), HORIZON)
    assert len(recording.notices) == 1
    _set_account(engine, "01.zalo", status="active", status_reason=None)
    closed = await credential_pass(
        engine, notifier, directory, CONTACTS, t0 + timedelta(hours=3), HORIZON
    )
    assert closed.closed == 1


async def test_failures_are_grouped_per_unit_and_told_once(demo_db) -> None:  # type: ignore[no-untyped-def]
    engine, now = demo_db.engine, demo_db.now
    directory = _add_people(engine)
    with Session(engine) as session:
        news = session.exec(
            select(DeliveryRow).where(DeliveryRow.article_id == demo_db.article_id)
        ).one()
        news.state, news.last_error = "failed", "(#100) Invalid parameter"
        session.add(news)
        for row in session.exec(select(DeliveryRow)):
            row.updated_at = now - timedelta(minutes=5)
            session.add(row)
        session.commit()
    recording = Recording()
    notifier = Notifier([recording])
    summary = await failure_pass(engine, notifier, directory, CONTACTS, now)
    assert summary.opened == 4
    by_unit = {n.unit_code: n for n in recording.notices}
    assert sorted(by_unit) == ["01", "79", "BYT"]  # one message per unit, not per delivery
    hanoi = by_unit["01"]
    assert hanoi.text.count("\n- #") == 2  # needs_review on telegram + the failed article
    assert "Invalid parameter" in hanoi.text
    assert [r.name for r in hanoi.recipients] == ["editor01"]
    # BYT has no editor: the central editors (subtree grant) are told.
    assert [r.name for r in by_unit["BYT"].recipients] == ["editor_cp"]
    # 79 has no editor either, so its shared inbox and the central editors get it.
    assert sorted(r.name for r in by_unit["79"].recipients) == ["editor_cp", "unit:79"]
    again = await failure_pass(engine, notifier, directory, CONTACTS, now + timedelta(minutes=1))
    assert again.opened == 0
    assert len(recording.notices) == 3


async def test_telegram_notice_reaches_the_sandbox_bot_api() -> None:
    sandbox = make_app()
    transport = httpx.ASGITransport(app=sandbox)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        settings = NotifyFile(
            channels=["telegram"],
            telegram=TelegramSettings(
                bot_token="env:NOTIFY_BOT_TOKEN", api_base="http://sandbox/telegram"
            ),
        )
        notifier = build_notifier(settings, client, environ={"NOTIFY_BOT_TOKEN": "123:abc"})
        notice = Notice(
            key="credentials:01",
            unit_code="01",
            subject="Tài khoản cần gia hạn",
            text="- 01.facebook: expiring",
            recipients=(Recipient("admin01", (), "-1002"),),
        )
        result = await notifier.send(notice)
        assert result.ok, result.errors
        ledger = (await client.get("/_sandbox/ledger")).json()
        assert [(e["platform"], e["account"]) for e in ledger] == [("telegram", "-1002")]
        assert "Tài khoản cần gia hạn" in ledger[0]["payload"]["text"]
        bad = TelegramTransport(client, "http://sandbox/telegram", "no-colon-token")
        with pytest.raises(NotifyError, match="HTTP 401"):
            await bad.send(notice)


# --- a tiny SMTP sink on 127.0.0.1 ----------------------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _SmtpSink = self.server  # type: ignore[assignment]
        self.wfile.write(b"220 sink ESMTP\r\n")
        mail_from, rcpt = "", []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode("ascii", "replace").strip()
            upper = verb.upper()
            if upper.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif upper.startswith("MAIL FROM:"):
                mail_from = verb[10:].strip(" <>")
                self.wfile.write(b"250 OK\r\n")
            elif upper.startswith("RCPT TO:"):
                rcpt.append(verb[8:].strip(" <>"))
                self.wfile.write(b"250 OK\r\n")
            elif upper == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = b""
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b".\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                server.messages.append((mail_from, rcpt, data))
                self.wfile.write(b"250 queued\r\n")
            elif upper == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


class _SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[str, list[str], bytes]] = []


@pytest.fixture
def smtp_sink() -> Iterator[_SmtpSink]:
    sink = _SmtpSink()
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    yield sink
    sink.shutdown()
    sink.server_close()
    thread.join(timeout=5)


async def test_email_notice_through_smtp(smtp_sink: _SmtpSink) -> None:
    settings = EmailSettings(
        host="127.0.0.1",
        port=smtp_sink.server_address[1],
        security="none",
        sender="publisher@example.gov.vn",
    )
    transport = EmailTransport(settings, None)
    notice = Notice(
        key="failures:01",
        unit_code="01",
        subject="[publisher] 2 lượt đăng cần xử lý",
        text="- #7 thất bại",
        recipients=(Recipient("editor01", ("bientap@example.gov.vn", "b@example.gov.vn")),),
    )
    await transport.send(notice)
    assert len(smtp_sink.messages) == 1
    sender, recipients, data = smtp_sink.messages[0]
    assert sender == "publisher@example.gov.vn"
    assert sorted(recipients) == ["b@example.gov.vn", "bientap@example.gov.vn"]
    message = message_from_bytes(data)
    assert str(make_header(decode_header(message["Subject"]))) == notice.subject
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "thất bại" in body.decode("utf-8")
    dead = EmailTransport(settings.model_copy(update={"port": 1}), None)
    with pytest.raises(NotifyError, match=r"email via 127\.0\.0\.1"):
        await dead.send(notice)


def test_settings_refuse_inline_secrets() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="never the secret itself"):
        TelegramSettings(bot_token="123:abc")
    with pytest.raises(ValidationError, match="exactly one of user or unit"):
        Contact(user="a", unit="01", email=["a@b.vn"])
    with pytest.raises(ValidationError, match="no \\[telegram\\] section"):
        NotifyFile(channels=["telegram"])
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        NotifyFile.model_validate({"chanels": ["email"]})
