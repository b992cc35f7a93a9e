"""Credential health: tokens that expire soon, have expired, fail or were revoked.

The policy is pure: `assess` takes account snapshots and `now` and says what is wrong;
`plan_incidents` takes those findings and the open incidents and says which incidents to
open (and so notify, once), which to notify again only because the last notice failed, and
which to close because the problem went away (a later recurrence is then a new incident).

Incident keys (shared with the delivery worker, which opens `auth:<account>` itself when a
platform refuses a token):
    token_expiry:<account>   the token expires within the horizon, or has expired
    auth:<account>           the account's status is auth_failed (refused or revoked token)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from publisher.domain import AccountStatus
from publisher.store.tables import ChannelAccountRow, IncidentRow

DEFAULT_HORIZON_DAYS = 14
EXPIRY_PREFIX = "token_expiry:"
AUTH_PREFIX = "auth:"
MANAGED_PREFIXES = (EXPIRY_PREFIX, AUTH_PREFIX)


class Problem(StrEnum):
    EXPIRING = "expiring"  # expires within the horizon
    EXPIRED = "expired"  # expiry time has passed
    AUTH_FAILED = "auth_failed"  # the platform refused the token
    REVOKED = "revoked"  # refused, and the platform said it was revoked


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    id: str
    unit_code: str
    platform: str
    status: str
    token_expires_at: datetime | None = None
    status_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    account_id: str
    unit_code: str
    platform: str
    problem: Problem
    token_expires_at: datetime | None
    reason: str | None

    @property
    def incident_key(self) -> str:
        if self.problem in (Problem.EXPIRING, Problem.EXPIRED):
            return EXPIRY_PREFIX + self.account_id
        return AUTH_PREFIX + self.account_id

    @property
    def incident_kind(self) -> str:
        return "token_expiry" if self.incident_key.startswith(EXPIRY_PREFIX) else "auth_failed"

    def describe(self, now: datetime) -> str:
        if self.problem is Problem.EXPIRING and self.token_expires_at is not None:
            left = self.token_expires_at - now
            days = left.total_seconds() / 86_400
            return f"token expires in {days:.1f} days"
        if self.problem is Problem.EXPIRED and self.token_expires_at is not None:
            ago = (now - self.token_expires_at).total_seconds() / 86_400
            return f"token expired {ago:.1f} days ago"
        return self.reason or "the platform refused the token"

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "unit": self.unit_code,
            "platform": self.platform,
            "problem": self.problem.value,
            "token_expires_at": self.token_expires_at.isoformat()
            if self.token_expires_at
            else None,
            "reason": self.reason,
            "incident_key": self.incident_key,
        }


def assess(accounts: Iterable[AccountSnapshot], now: datetime, horizon: timedelta) -> list[Finding]:
    """Every problem of every account, sorted by unit then account.

    An account can have two (a refused token that also expires soon). Disabled accounts are
    off on purpose and are not reported.
    """
    findings: list[Finding] = []
    for account in accounts:
        if account.status == AccountStatus.DISABLED.value:
            continue
        if account.status == AccountStatus.AUTH_FAILED.value:
            reason = account.status_reason
            revoked = bool(reason) and "revok" in (reason or "").lower()
            findings.append(
                Finding(
                    account.id,
                    account.unit_code,
                    account.platform,
                    Problem.REVOKED if revoked else Problem.AUTH_FAILED,
                    account.token_expires_at,
                    reason,
                )
            )
        expires = account.token_expires_at
        if expires is not None and expires <= now + horizon:
            findings.append(
                Finding(
                    account.id,
                    account.unit_code,
                    account.platform,
                    Problem.EXPIRED if expires <= now else Problem.EXPIRING,
                    expires,
                    None,
                )
            )
    return sorted(findings, key=lambda f: (f.unit_code, f.account_id, f.problem.value))


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: int
    key: str
    notified: bool


@dataclass(frozen=True, slots=True)
class IncidentPlan:
    to_open: tuple[Finding, ...]  # new incidents: open and notify
    to_renotify: tuple[tuple[int, Finding], ...]  # open, but the notice never went out
    to_close: tuple[int, ...]  # incident ids whose problem is gone


def plan_incidents(
    findings: Sequence[Finding], open_incidents: Iterable[OpenIncident]
) -> IncidentPlan:
    """Once per incident: only a finding with no open incident of its key is new."""
    by_key: dict[str, Finding] = {}
    for finding in findings:
        by_key.setdefault(finding.incident_key, finding)  # one incident per key
    open_by_key = {i.key: i for i in open_incidents if i.key.startswith(MANAGED_PREFIXES)}
    to_open = tuple(f for key, f in by_key.items() if key not in open_by_key)
    to_renotify = tuple(
        (incident.id, by_key[key])
        for key, incident in open_by_key.items()
        if key in by_key and not incident.notified
    )
    to_close = tuple(i.id for key, i in open_by_key.items() if key not in by_key)
    return IncidentPlan(to_open, to_renotify, to_close)


# --- reading and writing the store ----------------------------------------------------------


def snapshot(row: ChannelAccountRow) -> AccountSnapshot:
    return AccountSnapshot(
        id=row.id,
        unit_code=row.unit_code,
        platform=row.platform,
        status=row.status,
        token_expires_at=row.token_expires_at,
        status_reason=row.status_reason,
    )


def load_account_health(engine: sa.Engine, now: datetime, horizon: timedelta) -> list[Finding]:
    with Session(engine) as session:
        rows = session.exec(select(ChannelAccountRow)).all()
        return assess([snapshot(r) for r in rows], now, horizon)


@dataclass(frozen=True, slots=True)
class AppliedPlan:
    """What to tell people: (incident id, finding) pairs not yet notified."""

    to_notify: tuple[tuple[int, Finding], ...]
    opened: int
    closed: int


def apply_incident_plan(
    engine: sa.Engine, findings: Sequence[Finding], now: datetime
) -> AppliedPlan:
    """Open and close incidents in one transaction; return the incidents to notify."""
    with Session(engine) as session:
        open_rows = session.exec(
            select(IncidentRow).where(col(IncidentRow.closed_at).is_(None))
        ).all()
        plan = plan_incidents(
            findings,
            [
                OpenIncident(r.id, r.key, r.notified_at is not None)
                for r in open_rows
                if r.id is not None
            ],
        )
        for incident_id in plan.to_close:
            row = session.get(IncidentRow, incident_id)
            if row is not None:
                row.closed_at = now
                session.add(row)
        new_rows = []
        for finding in plan.to_open:
            row = IncidentRow(
                key=finding.incident_key,
                kind=finding.incident_kind,
                unit_code=finding.unit_code,
                detail=finding.describe(now),
                opened_at=now,
            )
            session.add(row)
            new_rows.append((row, finding))
        session.commit()
        to_notify = [(row.id, finding) for row, finding in new_rows if row.id is not None]
    return AppliedPlan(
        to_notify=tuple(to_notify) + plan.to_renotify,
        opened=len(plan.to_open),
        closed=len(plan.to_close),
    )


def mark_notified(engine: sa.Engine, incident_ids: Iterable[int], now: datetime) -> None:
    ids = list(incident_ids)
    if not ids:
        return
    with Session(engine) as session:
        for row in session.exec(select(IncidentRow).where(col(IncidentRow.id).in_(ids))):
            row.notified_at = now
            session.add(row)
        session.commit()


def group_by_unit(
    pairs: Iterable[tuple[int, Finding]],
) -> Mapping[str, list[tuple[int, Finding]]]:
    grouped: dict[str, list[tuple[int, Finding]]] = {}
    for pair in pairs:
        grouped.setdefault(pair[1].unit_code, []).append(pair)
    return dict(sorted(grouped.items()))
