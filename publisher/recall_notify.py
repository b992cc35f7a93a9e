"""Telling people what a recall could not take back by itself (docs/delivery.md, "Recall").

Withdrawals that end `needs_manual_removal` (the platform's API cannot remove the post, or
refused for good) or `failed` are told to the unit's editors — the people who run its
channel accounts — in one message per unit, with each post's link and why, once: each gets an
incident row (key "withdrawal:<delivery>:<state>", closed at once: it exists to be told),
marked notified when a channel took the message. Same machinery as failed deliveries
(`publisher.notify`); the alerting loop runs it on the same tick.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.credential_health import mark_notified
from publisher.domain import WithdrawalState, manual_removal_target
from publisher.notify import (
    Directory,
    Notice,
    Notifier,
    PassSummary,
    Recipient,
    recipients_for,
    told_once,
)
from publisher.settings.notify import Contact
from publisher.store.tables import WithdrawalRow

TOLD_STATES = (WithdrawalState.NEEDS_MANUAL_REMOVAL.value, WithdrawalState.FAILED.value)
PREFIX = "withdrawal:"
_STATE_VI = {
    WithdrawalState.NEEDS_MANUAL_REMOVAL.value: "cần gỡ thủ công",
    WithdrawalState.FAILED.value: "gỡ không thành công",
}


@dataclass(frozen=True, slots=True)
class Removal:
    delivery_id: int
    recall_id: int
    unit_code: str
    account_id: str
    platform: str
    state: str
    url: str | None
    why: str | None
    remote_id: str | None = None  # the post on the platform (a Viber message token …)


def open_removal_incidents(
    engine: sa.Engine, now: datetime, lookback: timedelta
) -> list[tuple[int, Removal]]:
    """Withdrawals settled as needs-manual or failed within `lookback` get one incident each;
    returns every such incident not yet notified."""
    with Session(engine) as session:
        rows = session.exec(
            select(WithdrawalRow).where(
                col(WithdrawalRow.state).in_(TOLD_STATES),
                col(WithdrawalRow.updated_at) >= now - lookback,
            )
        ).all()
        keys = {f"{PREFIX}{r.delivery_id}:{r.state}": r for r in rows}
        existing = told_once(session, "withdrawal", keys, now)
        return [
            (
                existing[key].id or 0,
                Removal(
                    row.delivery_id,
                    row.recall_id,
                    row.unit_code,
                    row.account_id,
                    row.platform,
                    row.state,
                    row.remote_url,
                    row.last_error,
                    row.remote_id,
                ),
            )
            for key, row in keys.items()
            if existing[key].notified_at is None and existing[key].id is not None
        ]


def removal_notice(
    unit_label: str,
    unit_code: str,
    removals: Sequence[Removal],
    recipients: tuple[Recipient, ...],
    unreached: tuple[str, ...] = (),
) -> Notice:
    lines = [f"Bài bị thu hồi cần gỡ thủ công ở {unit_label} · recalled posts to remove by hand:"]
    lines.append("")
    for r in removals:
        why = f" — {r.why}" if r.why else ""
        lines.append(
            f"- recall #{r.recall_id}, {r.account_id} ({r.platform}): "
            f"{manual_removal_target(r.platform, r.remote_id, r.url)} · "
            f"{_STATE_VI.get(r.state, r.state)} · {r.state}{why}"
        )
    return Notice(
        key=f"withdrawals:{unit_code}",
        unit_code=unit_code,
        subject=f"[publisher] {len(removals)} bài cần gỡ thủ công · posts to remove by hand: "
        f"{unit_label}",
        text="\n".join(lines),
        recipients=recipients,
        unreached=unreached,
    )


async def removal_pass(
    engine: sa.Engine,
    notifier: Notifier,
    directory: Directory,
    contacts: Sequence[Contact],
    now: datetime,
    lookback: timedelta = timedelta(days=2),
) -> PassSummary:
    """Tell each unit's editors, in one message per unit, which recalled posts they must
    remove by hand."""
    pending = open_removal_incidents(engine, now, lookback)
    summary = PassSummary(opened=len(pending))
    by_unit: dict[str, list[tuple[int, Removal]]] = {}
    for incident_id, removal in sorted(pending, key=lambda p: (p[1].unit_code, p[1].delivery_id)):
        by_unit.setdefault(removal.unit_code, []).append((incident_id, removal))
    for unit_code, pairs in by_unit.items():
        recipients, unreached = recipients_for(
            directory.editors_to_tell(unit_code), unit_code, contacts
        )
        notice = removal_notice(
            directory.unit_name(unit_code), unit_code, [r for _, r in pairs], recipients, unreached
        )
        result = await notifier.send(notice)
        summary.notices.append(result)
        if result.ok:
            mark_notified(engine, [incident_id for incident_id, _ in pairs], now)
    return summary
