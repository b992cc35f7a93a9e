"""Telling people: credential incidents and failed deliveries, once, grouped per unit.

- Who: for a credential problem, the admins of the account's unit and of its parent unit
  (if neither has one, the nearest ancestor's admins, so a notice never falls on nobody);
  for failed deliveries, the unit's editors (else the nearest ancestor's editors with a
  subtree grant). `notify.toml` contacts map users (and units' shared inboxes) to addresses.
- How: Telegram (Bot API sendMessage), e-mail (smtplib), or a signed "alert" webhook.
- Once: every notice belongs to an incident row; it is sent when the incident opens, marked
  `notified_at` when at least one channel took it, and not sent again while open.
- Grouped: one message per unit per pass, listing every account or delivery concerned.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.credential_health import (
    Finding,
    apply_incident_plan,
    group_by_unit,
    load_account_health,
    mark_notified,
)
from publisher.domain import VIETNAM_TZ, DeliveryState, Role, Unit, User
from publisher.settings.notify import Contact, EmailSettings, NotifyFile, resolve_secret
from publisher.store.tables import DeliveryRow, IncidentRow
from publisher.webhooks import WebhookSender

FAILURE_STATES = (
    DeliveryState.FAILED.value,
    DeliveryState.EXPIRED.value,
    DeliveryState.NEEDS_REVIEW.value,
)
FAILURE_PREFIX = "delivery:"


class NotifyError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str  # a username, or "unit:<code>" for a unit's shared inbox
    emails: tuple[str, ...] = ()
    telegram_chat: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    key: str  # what it is about, e.g. "credentials:01" or "failures:01"
    unit_code: str
    subject: str
    text: str
    recipients: tuple[Recipient, ...]
    unreached: tuple[str, ...] = ()  # people to tell who have no contact address


# --- directory: who is responsible ----------------------------------------------------------


@dataclass(frozen=True)
class Directory:
    units: Mapping[str, Unit]
    users: Sequence[User]

    def chain(self, unit_code: str) -> list[str]:
        """The unit, its parent, … up to the root."""
        codes: list[str] = []
        current: str | None = unit_code
        while current is not None and current not in codes:
            codes.append(current)
            unit = self.units.get(current)
            current = unit.parent_code if unit else None
        return codes

    def holders(self, role: Role, unit_code: str, subtree_only: bool) -> list[str]:
        return sorted(
            u.username
            for u in self.users
            if any(
                g.role is role and g.unit_code == unit_code and (g.subtree or not subtree_only)
                for g in u.grants
            )
        )

    def admins_to_tell(self, unit_code: str) -> list[str]:
        chain = self.chain(unit_code)
        names = self.holders(Role.ADMIN, chain[0], subtree_only=False)
        if len(chain) > 1:
            names += self.holders(Role.ADMIN, chain[1], subtree_only=False)
        for ancestor in chain[2:]:
            if names:
                break
            names = self.holders(Role.ADMIN, ancestor, subtree_only=True)
        return sorted(set(names))

    def editors_to_tell(self, unit_code: str) -> list[str]:
        chain = self.chain(unit_code)
        names = self.holders(Role.EDITOR, chain[0], subtree_only=False)
        for ancestor in chain[1:]:
            if names:
                break
            names = self.holders(Role.EDITOR, ancestor, subtree_only=True)
        return names

    def unit_name(self, code: str) -> str:
        unit = self.units.get(code)
        return f"{code} {unit.name}" if unit else code


def directory_from_engine(engine: sa.Engine) -> Directory:
    from publisher.store.sql import SqlRepository

    repository = SqlRepository(engine)
    return Directory({u.code: u for u in repository.list_units()}, repository.list_users())


def recipients_for(
    usernames: Iterable[str], unit_code: str, contacts: Sequence[Contact]
) -> tuple[tuple[Recipient, ...], tuple[str, ...]]:
    """(recipients, usernames without any contact). A unit's shared inbox is always added."""
    by_user = {c.user: c for c in contacts if c.user}
    found: list[Recipient] = []
    missing: list[str] = []
    for name in usernames:
        contact = by_user.get(name)
        if contact is None:
            missing.append(name)
        else:
            found.append(Recipient(name, tuple(contact.email), contact.telegram_chat))
    for contact in contacts:
        if contact.unit == unit_code:
            found.append(
                Recipient(f"unit:{unit_code}", tuple(contact.email), contact.telegram_chat)
            )
    return tuple(found), tuple(missing)


# --- composing messages (pure) --------------------------------------------------------------


def _local(moment: datetime | None) -> str:
    return moment.astimezone(VIETNAM_TZ).strftime("%Y-%m-%d %H:%M") if moment else "—"


def credential_notice(
    unit_label: str,
    unit_code: str,
    findings: Sequence[Finding],
    now: datetime,
    recipients: tuple[Recipient, ...],
    unreached: tuple[str, ...] = (),
) -> Notice:
    lines = [
        f"Tài khoản kênh của {unit_label} cần xử lý · channel accounts need attention:",
        "",
    ]
    for finding in findings:
        lines.append(
            f"- {finding.account_id} ({finding.platform}): {finding.problem.value}: "
            f"{finding.describe(now)}; hết hạn · expires {_local(finding.token_expires_at)} (+07)"
        )
    lines += ["", "Gia hạn token: publisher accounts set-token ACCOUNT · renew the token."]
    return Notice(
        key=f"credentials:{unit_code}",
        unit_code=unit_code,
        subject=f"[publisher] Tài khoản cần gia hạn · credentials: {unit_label} ({len(findings)})",
        text="\n".join(lines),
        recipients=recipients,
        unreached=unreached,
    )


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    delivery_id: int
    article_id: int
    unit_code: str
    account_id: str
    platform: str
    state: str
    error: str | None
    updated_at: datetime


def group_failures(failures: Iterable[FailedDelivery]) -> dict[str, list[FailedDelivery]]:
    """One group per unit, deliveries in id order: one message per unit, not per delivery."""
    grouped: dict[str, list[FailedDelivery]] = {}
    for failure in sorted(failures, key=lambda f: (f.unit_code, f.delivery_id)):
        grouped.setdefault(failure.unit_code, []).append(failure)
    return grouped


_STATE_VI = {
    "failed": "thất bại",
    "expired": "quá hạn",
    "needs_review": "cần kiểm tra",
}


def failure_notice(
    unit_label: str,
    unit_code: str,
    failures: Sequence[FailedDelivery],
    recipients: tuple[Recipient, ...],
    unreached: tuple[str, ...] = (),
) -> Notice:
    lines = [f"Bài chưa đăng được ở {unit_label} · deliveries that need a person:", ""]
    for f in failures:
        reason = f" — {f.error}" if f.error else ""
        lines.append(
            f"- #{f.delivery_id} article {f.article_id} on {f.account_id} ({f.platform}): "
            f"{_STATE_VI.get(f.state, f.state)} · {f.state}{reason}"
        )
    return Notice(
        key=f"failures:{unit_code}",
        unit_code=unit_code,
        subject=f"[publisher] {len(failures)} lượt đăng cần xử lý · deliveries need attention: "
        f"{unit_label}",
        text="\n".join(lines),
        recipients=recipients,
        unreached=unreached,
    )


# --- transports ------------------------------------------------------------------------------


class Transport(Protocol):
    name: str

    async def send(self, notice: Notice) -> None:
        """Deliver to every recipient this channel can reach; raise NotifyError on failure."""


class TelegramTransport:
    name = "telegram"

    def __init__(self, client: httpx.AsyncClient, api_base: str, token: str) -> None:
        self.client = client
        self.url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"

    async def send(self, notice: Notice) -> None:
        chats = sorted({r.telegram_chat for r in notice.recipients if r.telegram_chat})
        if not chats:
            raise NotifyError("telegram: no recipient has a telegram_chat")
        text = f"{notice.subject}\n\n{notice.text}"[:4096]
        for chat in chats:
            try:
                response = await self.client.post(self.url, json={"chat_id": chat, "text": text})
                reply = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise NotifyError(f"telegram: chat {chat}: {type(error).__name__}") from None
            if not (isinstance(reply, dict) and reply.get("ok")):
                description = reply.get("description") if isinstance(reply, dict) else None
                raise NotifyError(
                    f"telegram: chat {chat}: HTTP {response.status_code} {description or ''}"
                )


class EmailTransport:
    name = "email"

    def __init__(self, settings: EmailSettings, password: str | None) -> None:
        self.settings = settings
        self.password = password

    def _send_blocking(self, message: EmailMessage) -> None:
        s = self.settings
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.security == "ssl":
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        with smtp:
            if s.security == "starttls":
                smtp.starttls(context=context)
            if s.username and self.password is not None:
                smtp.login(s.username, self.password)
            smtp.send_message(message)

    async def send(self, notice: Notice) -> None:
        addresses = sorted({a for r in notice.recipients for a in r.emails})
        if not addresses:
            raise NotifyError("email: no recipient has an e-mail address")
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = ", ".join(addresses)
        message["Subject"] = notice.subject
        message.set_content(notice.text)
        try:
            await asyncio.to_thread(self._send_blocking, message)
        except (OSError, smtplib.SMTPException) as error:
            raise NotifyError(
                f"email via {self.settings.host}: {type(error).__name__}: {error}"
            ) from None


class WebhookAlertTransport:
    name = "webhook"

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender

    async def send(self, notice: Notice) -> None:
        outcomes = await self.sender.publish(
            "alert",
            {
                "key": notice.key,
                "unit": notice.unit_code,
                "subject": notice.subject,
                "text": notice.text,
                "recipients": [r.name for r in notice.recipients],
            },
        )
        if not any(o.ok for o in outcomes):
            errors = "; ".join(f"{o.url}: {o.error}" for o in outcomes) or "no alert endpoint"
            raise NotifyError(f"webhook: {errors}")


@dataclass
class SendResult:
    notice: Notice
    delivered_by: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.delivered_by)


class Notifier:
    """Sends a notice over every configured channel; it counts as told if one succeeded."""

    def __init__(self, transports: Sequence[Transport]) -> None:
        self.transports = list(transports)

    async def send(self, notice: Notice) -> SendResult:
        result = SendResult(notice)
        if not self.transports:
            result.errors.append("no notification channel is configured (notify.toml)")
        for transport in self.transports:
            try:
                await transport.send(notice)
            except NotifyError as error:
                result.errors.append(str(error))
            else:
                result.delivered_by.append(transport.name)
        return result


def build_notifier(
    settings: NotifyFile,
    client: httpx.AsyncClient,
    webhooks: WebhookSender | None = None,
    environ: Mapping[str, str] | None = None,
) -> Notifier:
    """Transports for `settings.channels`; secrets are resolved here (SecretError if absent)."""
    transports: list[Transport] = []
    for channel in settings.channels:
        if channel == "telegram" and settings.telegram is not None:
            token = resolve_secret(settings.telegram.bot_token, environ)
            transports.append(TelegramTransport(client, settings.telegram.api_base, token))
        elif channel == "email" and settings.email is not None:
            password = (
                resolve_secret(settings.email.password, environ)
                if settings.email.password
                else None
            )
            transports.append(EmailTransport(settings.email, password))
        elif channel == "webhook" and webhooks is not None:
            transports.append(WebhookAlertTransport(webhooks))
    return Notifier(transports)


# --- the passes the service runs -------------------------------------------------------------


@dataclass
class PassSummary:
    opened: int = 0
    closed: int = 0
    notices: list[SendResult] = field(default_factory=list)

    @property
    def failed_notices(self) -> list[SendResult]:
        return [n for n in self.notices if not n.ok]


async def credential_pass(
    engine: sa.Engine,
    notifier: Notifier,
    directory: Directory,
    contacts: Sequence[Contact],
    now: datetime,
    horizon: timedelta,
) -> PassSummary:
    """Check every account, open/close incidents, tell each unit once about new ones."""
    findings = load_account_health(engine, now, horizon)
    applied = apply_incident_plan(engine, findings, now)
    summary = PassSummary(opened=applied.opened, closed=applied.closed)
    for unit_code, pairs in group_by_unit(applied.to_notify).items():
        recipients, unreached = recipients_for(
            directory.admins_to_tell(unit_code), unit_code, contacts
        )
        notice = credential_notice(
            directory.unit_name(unit_code),
            unit_code,
            [finding for _, finding in pairs],
            now,
            recipients,
            unreached,
        )
        result = await notifier.send(notice)
        summary.notices.append(result)
        if result.ok:
            mark_notified(engine, [incident_id for incident_id, _ in pairs], now)
    return summary


def told_once(
    session: Session, kind: str, rows: Mapping[str, Any], now: datetime
) -> dict[str, IncidentRow]:
    """An incident per key, made on first sight (and committed): a fact to tell once, with
    nothing to resolve, so it is closed when opened. `rows` carry `unit_code` and
    `last_error`. Returns the incident of every key, old or new."""
    existing = {
        i.key: i
        for i in session.exec(select(IncidentRow).where(col(IncidentRow.key).in_(list(rows))))
    }
    for key, row in rows.items():
        if key not in existing:
            incident = IncidentRow(
                key=key,
                kind=kind,
                unit_code=row.unit_code,
                detail=(row.last_error or "")[:2000],
                opened_at=now,
                closed_at=now,
            )
            session.add(incident)
            existing[key] = incident
    session.commit()
    return existing


def open_failure_incidents(
    engine: sa.Engine, now: datetime, lookback: timedelta
) -> list[tuple[int, FailedDelivery]]:
    """Failed / expired / needs_review deliveries changed within `lookback` that have no
    incident yet get one (key "delivery:<id>:<state>"); returns every such incident not yet
    notified. A delivery that goes needs_review → failed is a new incident: a new fact."""
    since = now - lookback
    with Session(engine) as session:
        rows = session.exec(
            select(DeliveryRow).where(
                col(DeliveryRow.state).in_(FAILURE_STATES),
                col(DeliveryRow.updated_at) >= since,
            )
        ).all()
        keys = {f"{FAILURE_PREFIX}{r.id}:{r.state}": r for r in rows}
        existing = told_once(session, "delivery_failure", keys, now)
        pending = []
        for key, row in keys.items():
            incident = existing[key]
            if incident.notified_at is None and incident.id is not None and row.id is not None:
                pending.append(
                    (
                        incident.id,
                        FailedDelivery(
                            delivery_id=row.id,
                            article_id=row.article_id,
                            unit_code=row.unit_code,
                            account_id=row.account_id,
                            platform=row.platform,
                            state=row.state,
                            error=row.last_error,
                            updated_at=row.updated_at,
                        ),
                    )
                )
    return pending


async def failure_pass(
    engine: sa.Engine,
    notifier: Notifier,
    directory: Directory,
    contacts: Sequence[Contact],
    now: datetime,
    lookback: timedelta = timedelta(days=2),
) -> PassSummary:
    """Tell each unit's editors, in one message per unit, about deliveries that need them."""
    pending = open_failure_incidents(engine, now, lookback)
    incident_of = {failure.delivery_id: incident_id for incident_id, failure in pending}
    summary = PassSummary(opened=len(pending))
    for unit_code, failures in group_failures(f for _, f in pending).items():
        recipients, unreached = recipients_for(
            directory.editors_to_tell(unit_code), unit_code, contacts
        )
        notice = failure_notice(
            directory.unit_name(unit_code), unit_code, failures, recipients, unreached
        )
        result = await notifier.send(notice)
        summary.notices.append(result)
        if result.ok:
            mark_notified(engine, [incident_of[f.delivery_id] for f in failures], now)
    return summary
