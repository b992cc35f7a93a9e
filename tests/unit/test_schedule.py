from __future__ import annotations

from datetime import UTC, datetime, timedelta

from publisher.domain import VIETNAM_TZ, Pause, PauseScope
from publisher.schedule import earliest_allowed, pause_applying, plan_due, stagger_offset_s
from publisher.settings.workflow import AccountSchedule, ScheduleFile


def vn(h: int, m: int = 0, day: int = 24) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=VIETNAM_TZ)


def test_quiet_hours_across_midnight_push_to_their_end():
    s = AccountSchedule(quiet_hours=["22:00-06:00"])
    assert earliest_allowed(vn(23), s) == vn(6, day=25).astimezone(UTC)
    assert earliest_allowed(vn(3), s) == vn(6).astimezone(UTC)
    assert earliest_allowed(vn(12), s) == vn(12).astimezone(UTC)


def test_slots_pick_the_next_one_and_skip_quiet_hours():
    s = AccountSchedule(slots=["07:30", "11:00", "23:30"], quiet_hours=["23:00-06:00"])
    assert earliest_allowed(vn(8), s) == vn(11).astimezone(UTC)
    assert earliest_allowed(vn(12), s) == vn(7, 30, day=25).astimezone(UTC)


def test_urgent_goes_now_even_in_quiet_hours_and_others_are_staggered():
    settings = ScheduleFile(stagger_seconds=600, urgent_stagger_seconds=0)
    s = AccountSchedule(quiet_hours=["22:00-06:00"])
    assert plan_due(vn(23), s, settings, urgent=True, stagger_key="a") == vn(23)
    dues = {plan_due(vn(12), s, settings, urgent=False, stagger_key=f"k{i}") for i in range(1000)}
    assert min(dues) >= vn(12)
    assert max(dues) < vn(12) + timedelta(seconds=600)
    per_second = {}
    for d in dues:
        per_second[d.replace(microsecond=0)] = per_second.get(d.replace(microsecond=0), 0) + 1
    assert max(per_second.values()) <= 10  # 1,000 units over 10 minutes, not one second
    assert stagger_offset_s("same", 600) == stagger_offset_s("same", 600)


def test_pause_scopes():
    now = vn(12)
    p = lambda scope, target, until=None: Pause(scope, target, "r", "admin", now, until)  # noqa: E731
    kw = {
        "unit_code": "00004",
        "unit_ancestors": ["01", "CP"],
        "platform": "zalo",
        "account_id": "00004.zalo",
    }
    assert pause_applying([p(PauseScope.SUBTREE, "01")], now, **kw) is not None
    assert pause_applying([p(PauseScope.SUBTREE, "79")], now, **kw) is None
    assert pause_applying([p(PauseScope.UNIT, "01")], now, **kw) is None
    assert pause_applying([p(PauseScope.CHANNEL, "zalo")], now, **kw) is not None
    assert pause_applying([p(PauseScope.ALL, "")], now, **kw) is not None
    assert pause_applying([p(PauseScope.ALL, "", until=now)], now, **kw) is None
