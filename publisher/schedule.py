"""Scheduling: when a delivery may go out, and whether it may go out now. Pure.

Slots and quiet hours are read in Vietnam time (Asia/Ho_Chi_Minh); everything is returned in
UTC. Urgent directives go first (high priority) and now (no slots, no quiet hours), with a
short stagger; others are staggered over a window so thousands of units do not hit one
platform in the same second, then moved to the next allowed slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from publisher.domain import VIETNAM_TZ, ArticleKind, Pause, PauseScope
from publisher.settings.workflow import AccountSchedule, ScheduleFile


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def in_quiet_hours(at: datetime, schedule: AccountSchedule) -> datetime | None:
    """If `at` falls in quiet hours, when they end (UTC); else None."""
    local = at.astimezone(VIETNAM_TZ)
    for span in schedule.quiet_hours:
        start_text, end_text = span.split("-")
        start, end = _hhmm(start_text), _hhmm(end_text)
        now_t = local.time()
        if start <= end:
            inside = start <= now_t < end
            end_day = local.date()
        else:  # spans midnight
            inside = now_t >= start or now_t < end
            end_day = local.date() + timedelta(days=1) if now_t >= start else local.date()
        if inside:
            return datetime.combine(end_day, end, VIETNAM_TZ).astimezone(UTC)
    return None


def next_slot(at: datetime, schedule: AccountSchedule) -> datetime:
    """The first slot at or after `at` (any time when there are no slots)."""
    if not schedule.slots:
        return at
    local = at.astimezone(VIETNAM_TZ)
    for day in range(0, 8):
        date = local.date() + timedelta(days=day)
        for slot in schedule.slots:
            candidate = datetime.combine(date, _hhmm(slot), VIETNAM_TZ)
            if candidate >= local:
                return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a slot exists every day")


def earliest_allowed(at: datetime, schedule: AccountSchedule) -> datetime:
    """The first moment at or after `at` that is a slot and outside quiet hours."""
    current = at
    for _ in range(64):
        slotted = next_slot(current, schedule)
        quiet_end = in_quiet_hours(slotted, schedule)
        if quiet_end is None:
            return slotted.astimezone(UTC)
        current = quiet_end
    raise ValueError("the schedule allows no time at all (quiet hours cover every slot)")


def stagger_offset_s(key: str, window_s: float) -> float:
    """A stable spread in [0, window): the same key always lands at the same offset."""
    if window_s <= 0:
        return 0.0
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * window_s


def plan_due(
    now: datetime,
    schedule: AccountSchedule,
    settings: ScheduleFile,
    *,
    urgent: bool,
    stagger_key: str,
    requested_at: datetime | None = None,
) -> datetime:
    """When one delivery becomes due."""
    start = max(now, requested_at) if requested_at is not None else now
    if urgent:
        return start + timedelta(
            seconds=stagger_offset_s(stagger_key, settings.urgent_stagger_seconds)
        )
    staggered = start + timedelta(seconds=stagger_offset_s(stagger_key, settings.stagger_seconds))
    return earliest_allowed(staggered, schedule)


def priority_for(urgent: bool, settings: ScheduleFile, base: int = 0) -> int:
    return settings.urgent_priority if urgent else base


def expiry_for(start: datetime, kind: ArticleKind, settings: ScheduleFile) -> datetime | None:
    hours = settings.expiry_hours.get(kind.value)
    return start + timedelta(hours=hours) if hours else None


def pause_applying(
    pauses: Iterable[Pause],
    now: datetime,
    *,
    unit_code: str,
    unit_ancestors: Iterable[str],
    platform: str,
    account_id: str,
) -> Pause | None:
    """The active pause that holds this delivery back, if any (paused work keeps its place)."""
    above = set(unit_ancestors)
    for pause in pauses:
        if not pause.active_at(now):
            continue
        scope = pause.scope
        if (
            scope is PauseScope.ALL
            or (scope is PauseScope.UNIT and pause.target == unit_code)
            or (
                scope is PauseScope.SUBTREE and (pause.target == unit_code or pause.target in above)
            )
            or (scope is PauseScope.CHANNEL and pause.target == platform)
            or (scope is PauseScope.ACCOUNT and pause.target == account_id)
        ):
            return pause
    return None
