"""The read models of `publisher.views` over a real database (SQLite and PostgreSQL).

Every query is checked with exact results for users of different reach: an approver of
Hà Nội (01) sees 01 and its communes, never TP. Hồ Chí Minh (79); the admin at the root sees
the whole network.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from world import (
    DIRECTIVE,
    HCM,
    HN_APPROVED,
    HN_APPROVED_AT,
    HN_WAITING,
    HOAN_KIEM,
    NOW,
    WORKER_NOW,
    World,
)

from publisher.domain import VIETNAM_TZ, PauseScope, Role, RoleGrant, User
from publisher.reports import ReportError
from publisher.views import QueueFilter, local_day_bounds

HANOI_UNITS = {"01", "S01001", "S01002", "S01003"}
HCM_UNITS = {"79", "S79001", "S79002", "S79003"}


def rows(world: World, username: str, wanted: QueueFilter | None = None) -> set[tuple[str, str]]:
    page = world.views.queue(world.user(username), wanted or QueueFilter(), limit=500)
    assert page.total == len(page.items)
    return {(item.unit_code, item.title) for item in page.items}


# --- scope -------------------------------------------------------------------------------


def test_units_follow_the_grants(world: World) -> None:
    views = world.views
    assert {u.code for u in views.units(world.user("duyet.hanoi"))} == HANOI_UNITS
    assert {u.code for u in views.units(world.user("duyet.hoankiem"))} == {"S01001"}
    assert {u.code for u in views.units(world.user("bientap.cp"))} == {"CP"}  # subtree = false
    every = views.units(world.user("admin"))
    assert len(every) == len(world.config.units)
    assert every[0].code == "CP"  # the root first (by depth)
    assert views.scope_for(world.user("admin")).everything
    assert not views.scope_for(world.user("duyet.hanoi")).everything


# --- the queue ---------------------------------------------------------------------------


def test_queue_of_a_province_approver(world: World) -> None:
    user = world.user("duyet.hanoi")
    page = world.views.queue(user, limit=50)
    got = [(i.unit_code, i.title, i.state) for i in page.items]
    # Waiting posts first (oldest id first among equal times), then the rest.
    assert got[:2] == [
        ("01", HN_WAITING, "awaiting_approval"),
        ("S01001", HOAN_KIEM, "awaiting_approval"),
    ]
    assert set(got[2:]) == {
        ("01", DIRECTIVE, "approved"),
        ("S01001", DIRECTIVE, "approved"),
        ("S01002", DIRECTIVE, "approved"),
        ("S01003", DIRECTIVE, "approved"),
        ("01", HN_APPROVED, "approved"),
    }
    assert page.total == 7
    assert not {i.unit_code for i in page.items} & HCM_UNITS
    directive_01 = next(i for i in page.items if i.unit_code == "01" and i.title == DIRECTIVE)
    assert [(c.platform, c.state) for c in directive_01.channels] == [
        ("facebook", "failed"),
        ("telegram", "pending"),  # failed, then retried by duyet.hanoi
        ("viber", "pending"),
        ("zalo", "pending"),
    ]
    moved = next(i for i in page.items if i.title == HN_APPROVED)
    assert moved.scheduled_at == HN_APPROVED_AT
    assert world.views.queue_counts(user) == {
        "awaiting_approval": 2,
        "approved": 5,
        "rejected": 0,
        "cancelled": 0,
        "recalled": 0,
    }


def test_queue_counts_of_other_users(world: World) -> None:
    counts = world.views.queue_counts
    assert counts(world.user("duyet.hcm")) == {
        "awaiting_approval": 0,
        "approved": 4,
        "rejected": 1,
        "cancelled": 0,
        "recalled": 0,
    }
    assert counts(world.user("duyet.hoankiem")) == {
        "awaiting_approval": 1,
        "approved": 1,
        "rejected": 0,
        "cancelled": 0,
        "recalled": 0,
    }
    everyone = counts(world.user("admin"))
    assert everyone["awaiting_approval"] == 2  # HN_WAITING, HOAN_KIEM
    assert everyone["rejected"] == 1
    assert sum(everyone.values()) == world.views.queue(world.user("admin")).total
    assert rows(world, "duyet.hcm") == {(u, DIRECTIVE) for u in HCM_UNITS} | {("79", HCM)}


def test_queue_pages(world: World) -> None:
    user = world.user("duyet.hanoi")
    seen: list[int] = []
    offset = 0
    while True:
        page = world.views.queue(user, offset=offset, limit=3)
        assert page.total == 7
        assert page.page_count == 3
        assert page.page_number == offset // 3 + 1
        seen.extend(i.post_id for i in page.items)
        if not page.has_next:
            break
        offset += 3
    assert len(seen) == len(set(seen)) == 7
    assert [len(world.views.queue(user, offset=o, limit=3).items) for o in (0, 3, 6)] == [3, 3, 1]
    assert world.views.queue(user, offset=6, limit=3).has_previous
    full = [i.post_id for i in world.views.queue(user, limit=50).items]
    assert seen == full  # pages are slices of one stable order


def test_queue_filters(world: World) -> None:
    assert rows(world, "duyet.hanoi", QueueFilter(unit="S01001")) == {
        ("S01001", HOAN_KIEM),
        ("S01001", DIRECTIVE),
    }
    # A unit outside the grants gives nothing, even when asked for by name.
    assert rows(world, "duyet.hanoi", QueueFilter(unit="79")) == set()
    assert rows(world, "duyet.hanoi", QueueFilter(state="awaiting_approval")) == {
        ("01", HN_WAITING),
        ("S01001", HOAN_KIEM),
    }
    assert rows(world, "duyet.hanoi", QueueFilter(kind="directive")) == {
        (u, DIRECTIVE) for u in HANOI_UNITS
    }
    # Only the province has a Telegram account; communes have Facebook and Zalo.
    assert rows(world, "duyet.hanoi", QueueFilter(channel="telegram")) == {
        ("01", DIRECTIVE),
        ("01", HN_APPROVED),
        ("01", HN_WAITING),
    }
    assert rows(world, "admin", QueueFilter(channel="x")) == {("CP", DIRECTIVE)}
    # Day: a moved post by its own time, the others by their channels' due times.
    assert rows(world, "duyet.hanoi", QueueFilter(day=date(2026, 11, 15))) == {("01", HN_APPROVED)}
    assert ("01", HN_APPROVED) not in rows(
        world, "duyet.hanoi", QueueFilter(day=date(2026, 11, 14))
    )
    assert ("01", DIRECTIVE) in rows(world, "duyet.hanoi", QueueFilter(day=date(2026, 11, 14)))
    assert rows(world, "duyet.hanoi", QueueFilter(day=date(2026, 11, 20))) == set()
    combined = QueueFilter(unit="01", kind="article", state="approved")
    assert rows(world, "duyet.hanoi", combined) == {("01", HN_APPROVED)}


def test_queue_search(world: World) -> None:
    # In the title …
    assert rows(world, "duyet.hanoi", QueueFilter(search="tiêm chủng")) == {("01", HN_WAITING)}
    # … or the unit's name (S01001 is phường Hoàn Kiếm) …
    assert rows(world, "duyet.hanoi", QueueFilter(search="hoàn kiếm")) == {
        ("S01001", HOAN_KIEM),
        ("S01001", DIRECTIVE),
    }
    # … or its code; never outside the grants.
    assert rows(world, "duyet.hanoi", QueueFilter(search="S01002")) == {("S01002", DIRECTIVE)}
    assert rows(world, "duyet.hanoi", QueueFilter(search="Thủ Thiêm")) == set()
    assert rows(world, "duyet.hcm", QueueFilter(search="Thủ Thiêm")) == {("79", HCM)}
    assert rows(world, "duyet.hanoi", QueueFilter(search="   ")) == rows(world, "duyet.hanoi")


# --- one post ----------------------------------------------------------------------------


def test_post_detail(world: World) -> None:
    user = world.user("duyet.hanoi")
    post_id = world.post_id(HN_APPROVED, "01")
    detail = world.views.post(user, post_id)
    assert detail is not None
    assert detail.post.id == post_id
    assert detail.post.state.value == "approved"
    assert detail.post.scheduled_at == HN_APPROVED_AT
    assert detail.article.title == HN_APPROVED
    assert detail.article.id == world.article_ids[HN_APPROVED]
    assert detail.article.kind.value == "article"
    assert detail.unit.code == "01"
    assert detail.unit.name == "Thành phố Hà Nội"
    assert [(d.account_id, d.state) for d in detail.deliveries] == [
        ("01.facebook", "pending"),
        ("01.telegram", "pending"),
        ("01.viber", "pending"),
        ("01.zalo", "pending"),
    ]
    assert {d.title for d in detail.deliveries} == {HN_APPROVED}
    # Another province's post is not found for this user (not merely hidden in a list).
    assert world.views.post(user, world.post_id(HCM, "79")) is None
    assert world.views.post(world.user("duyet.hcm"), world.post_id(HCM, "79")) is not None
    assert world.views.post(user, 999_999) is None


def test_post_detail_carries_what_was_sent(world: World) -> None:
    detail = world.views.post(world.user("admin"), world.post_id(DIRECTIVE, "CP"))
    assert detail is not None
    sent = next(d for d in detail.deliveries if d.account_id == "CP.facebook")
    assert sent.state == "sent"
    assert sent.remote_url == "https://facebook.com/123_456"
    assert sent.sent_at == WORKER_NOW
    assert detail.payloads["CP.facebook"] == {"message": DIRECTIVE}


# --- calendar ----------------------------------------------------------------------------


def test_calendar_window(world: World) -> None:
    user = world.user("duyet.hanoi")
    start, end = local_day_bounds(date(2026, 11, 15))
    tomorrow = world.views.calendar(user, start, end)
    assert [(d.account_id, d.title) for d in tomorrow] == [
        (f"01.{p}", HN_APPROVED) for p in ("facebook", "telegram", "viber", "zalo")
    ]
    assert {d.due_at for d in tomorrow} == {HN_APPROVED_AT}
    start, end = local_day_bounds(date(2026, 11, 14))
    today = world.views.calendar(user, start, end)
    assert {d.unit_code for d in today} == HANOI_UNITS
    assert {d.title for d in today} == {DIRECTIVE, HN_WAITING, HOAN_KIEM}
    # 01: four channels × (directive, waiting article); communes: two × directive; S01001 own
    assert len(today) == 4 * 2 + 2 * 3 + 2
    assert [d.due_at for d in today] == sorted(d.due_at for d in today)
    assert all(start <= d.due_at < end for d in today)
    only = world.views.calendar(user, start, end, unit="S01002", channel="zalo")
    assert [(d.account_id, d.title) for d in only] == [("S01002.zalo", DIRECTIVE)]
    assert world.views.calendar(user, start, end, unit="79") == []
    # The rejected post's deliveries are cancelled: off the calendar.
    hcm = world.views.calendar(world.user("duyet.hcm"), start, end)
    assert {d.unit_code for d in hcm} == HCM_UNITS
    assert HCM not in {d.title for d in hcm}
    assert world.views.calendar(user, start, end, limit=3) == today[:3]


# --- accounts and pauses ------------------------------------------------------------------


def test_accounts_with_token_expiry(world: World) -> None:
    mine = world.views.accounts(world.user("duyet.hanoi"), NOW)
    assert [a.account.id for a in mine] == [
        "01.facebook",
        "01.telegram",
        "01.viber",
        "01.youtube",
        "01.zalo",
        "S01001.facebook",
        "S01001.zalo",
        "S01002.facebook",
        "S01002.zalo",
        "S01003.facebook",
        "S01003.zalo",
    ]
    by_id = {a.account.id: a for a in mine}
    # 15/02/2027 00:00 (+07) is 92 days and 14 hours after 14/11/2026 10:00 (+07).
    assert by_id["01.zalo"].expires_in_days == pytest.approx(92 + 14 / 24)
    assert by_id["01.telegram"].expires_in_days is None
    assert not by_id["01.zalo"].expiring()
    assert by_id["01.facebook"].unit_name == "Thành phố Hà Nội"
    everyone = {a.account.id: a for a in world.views.accounts(world.user("admin"), NOW)}
    assert len(everyone) == len(world.config.accounts)
    # 28/11/2026 00:00 (+07): 13 days 14 hours away — highlighted.
    assert everyone["40.facebook"].expires_in_days == pytest.approx(13 + 14 / 24)
    assert everyone["40.facebook"].expiring()
    assert everyone["79.viber"].account.status.value == "auth_failed"
    assert everyone["01.facebook"].account.status.value == "active"
    one_unit = world.views.accounts(world.user("admin"), NOW, unit="S79001")
    assert [a.account.id for a in one_unit] == ["S79001.facebook", "S79001.zalo"]
    assert world.views.accounts(world.user("duyet.hanoi"), NOW, unit="79") == []


def test_pauses_in_force(world: World) -> None:
    now = [(p.scope, p.target) for p in world.views.pauses(NOW)]
    assert now == [
        (PauseScope.SUBTREE, "22"),
        (PauseScope.CHANNEL, "x"),
        (PauseScope.UNIT, "S22002"),
    ]  # the S22001 pause was lifted
    later = [(p.scope, p.target) for p in world.views.pauses(NOW + timedelta(hours=3))]
    assert later == [(PauseScope.SUBTREE, "22"), (PauseScope.CHANNEL, "x")]
    storm = world.views.pauses(NOW)[0]
    assert (storm.reason, storm.created_by, storm.until) == (
        "Bão số 13 đổ bộ",
        "quantri.quangninh",
        None,
    )
    assert world.views.pauses(NOW)[2].until == NOW + timedelta(hours=2)


# --- problems ----------------------------------------------------------------------------


def test_problems_are_scoped(world: World) -> None:
    def problems(username: str) -> list[tuple[str, str, str | None]]:
        page = world.views.problems(world.user(username))
        assert page.total == len(page.items)
        return [(d.account_id, d.state, d.error_kind) for d in page.items]

    hanoi = [
        ("01.facebook", "failed", "permanent"),
        ("S01001.zalo", "unknown", "unknown_outcome"),
    ]
    assert problems("duyet.hanoi") == hanoi
    assert problems("duyet.hcm") == [("79.facebook", "failed", "permanent")]
    assert problems("quantri.quangninh") == []
    assert sorted(problems("admin")) == sorted([*hanoi, ("79.facebook", "failed", "permanent")])
    first = world.views.problems(world.user("duyet.hanoi"), offset=0, limit=1)
    assert (first.total, len(first.items), first.has_next) == (2, 1, True)
    failed = first.items[0]
    assert failed.last_error == "(#100) Invalid parameter"
    assert failed.title == DIRECTIVE


# --- audit -------------------------------------------------------------------------------


def trail(world: World, username: str, text: str = "") -> list[tuple[str, str, str]]:
    page = world.views.audit(world.user(username), text, limit=100)
    assert page.total == len(page.items)
    assert [e.seq for e in page.items] == sorted((e.seq for e in page.items), reverse=True)
    return [(e.actor, e.action, e.target) for e in page.items]


def test_audit_of_a_province_approver_is_their_units_only(world: World) -> None:
    ids = world.article_ids
    retried = world.delivery_ids["01.telegram retried"]
    assert trail(world, "duyet.hanoi") == [
        ("duyet.hanoi", "retry", f"delivery:{retried}"),
        ("duyet.hanoi", "reschedule", f"post:{world.post_id(HN_APPROVED, '01')}"),
        ("duyet.hanoi", "approve", f"post:{world.post_id(HN_APPROVED, '01')}"),
        ("system", "route", f"article:{ids[HOAN_KIEM]}"),
        ("system", "route", f"article:{ids[HN_WAITING]}"),
        ("system", "route", f"article:{ids[HN_APPROVED]}"),
        ("system", "route", f"article:{ids[DIRECTIVE]}"),  # it reached Hà Nội too
    ]


def test_audit_of_other_users(world: World) -> None:
    ids = world.article_ids
    assert trail(world, "duyet.hcm") == [
        ("worker:test-worker", "account_stopped", "79.viber"),
        ("duyet.hcm", "reject", f"post:{world.post_id(HCM, '79')}"),
        ("system", "route", f"article:{ids[HCM]}"),
        ("system", "route", f"article:{ids[DIRECTIVE]}"),
    ]
    assert trail(world, "quantri.quangninh") == [
        ("quantri.quangninh", "pause", "unit:S22002"),
        ("quantri.quangninh", "resume", "unit:S22001"),
        ("quantri.quangninh", "pause", "unit:S22001"),
        ("quantri.quangninh", "pause", "subtree:22"),
        ("system", "route", f"article:{ids[DIRECTIVE]}"),
    ]
    assert trail(world, "duyet.hoankiem") == [
        ("system", "route", f"article:{ids[HOAN_KIEM]}"),
        ("system", "route", f"article:{ids[DIRECTIVE]}"),
    ]
    # The root's admin sees every event, those of no unit (channel-wide pause) included.
    everything = trail(world, "admin")
    assert len(everything) == 15
    assert ("admin", "pause", "channel:x") in everything
    assert ("admin", "pause", "channel:x") not in trail(world, "bientap.cp")


def test_audit_search_stays_in_scope(world: World) -> None:
    assert trail(world, "duyet.hanoi", "reject") == []
    assert [a for _, a, _ in trail(world, "admin", "reject")] == ["reject"]
    assert trail(world, "duyet.hanoi", "duyet.hcm") == []
    page = world.views.audit(world.user("duyet.hanoi"), "", offset=2, limit=2)
    assert (page.total, [e.action for e in page.items]) == (7, ["approve", "route"])


def test_audit_for_several_separate_units(world: World) -> None:
    both = User(
        "hai.tinh",
        "Hai tỉnh",
        (RoleGrant("01", Role.APPROVER, subtree=False), RoleGrant("79", Role.APPROVER)),
    )
    got = {t for _, _, t in trail(world, "duyet.hanoi")} | {
        t for _, _, t in trail(world, "duyet.hcm")
    }
    mine = [e.target for e in world.views.audit(both, limit=100).items]
    # 01 without its communes: the Hoàn Kiếm article is not there; 79 with its subtree.
    assert f"article:{world.article_ids[HOAN_KIEM]}" not in mine
    assert set(mine) < got
    assert "79.viber" in mine
    assert f"post:{world.post_id(HN_APPROVED, '01')}" in mine


# --- directives and coverage ---------------------------------------------------------------


def test_directives(world: World) -> None:
    found = world.views.directives()
    assert [(d.article_id, d.title) for d in found] == [(world.article_ids[DIRECTIVE], DIRECTIVE)]
    assert found[0].published_at == NOW - timedelta(hours=3)


def test_coverage_is_scoped_to_the_users_units(world: World) -> None:
    directive = world.article_ids[DIRECTIVE]
    hanoi = world.views.coverage(world.user("duyet.hanoi"), directive, WORKER_NOW)
    assert {u.unit.code for u in hanoi.units} == HANOI_UNITS
    assert hanoi.total.targeted == 4 + 2 * 3
    assert hanoi.cell("01", "facebook") is not None
    assert hanoi.cell("01", "facebook").state == "failed"  # type: ignore[union-attr]
    assert hanoi.cell("79", "facebook") is None
    # Grants at two separate provinces: those two subtrees, not the network between them.
    both = User(
        "hai.tinh", "Hai tỉnh", (RoleGrant("01", Role.APPROVER), RoleGrant("79", Role.APPROVER))
    )
    two = world.views.coverage(both, directive, WORKER_NOW)
    assert {u.unit.code for u in two.units} == HANOI_UNITS | HCM_UNITS
    assert {lv.key for lv in two.levels} == {"province", "commune"}
    everything = world.views.coverage(world.user("admin"), directive, WORKER_NOW)
    assert {u.unit.code for u in everything.units} >= {"CP", "BQP", "01", "79", "S92001"}
    assert everything.total.sent == 1  # CP.facebook
    assert everything.cell("CP", "facebook").state == "sent"  # type: ignore[union-attr]
    with pytest.raises(ReportError, match="no article with id 999999"):
        world.views.coverage(world.user("admin"), 999_999, WORKER_NOW)


def test_day_bounds_are_vietnamese_days() -> None:
    start, end = local_day_bounds(date(2026, 11, 15))
    assert start == datetime(2026, 11, 15, 0, 0, tzinfo=VIETNAM_TZ)
    assert start.utcoffset() == timedelta(hours=7)
    assert end - start == timedelta(days=1)
