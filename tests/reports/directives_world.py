"""A store with known directives, for the directives overview checked by hand.

Units: CP (central) → BYT (ministry), 01 (province) → 00004, 79 (province) → 26734.
Users: admin (admin at CP: everything), hanoi (editor at 01: 01 and 00004), ghost (no role).
Times are Hà Nội (+07:00); lags are after the directive's publication.

    D1 2026-11-01 10:00  01 facebook sent +1m                          (before the period)
    D2 2026-11-12 08:00  CP fb sent +2m · 01 fb sent +10m · 01 zalo failed
                         00004 fb sent +30m · 79 fb expired · 26734 fb pending
                         BYT: a post, no channel account
                         a recall of 79's post only (its delivery never went out: not_sent)
    D3 2026-11-13 09:00  CP fb sent +1m · 01 fb sent +5m · 00004 fb cancelled · 79 fb cancelled
                         recalled everywhere: CP withdrawn, 01 needs_manual_removal,
                         00004 and 79 not_sent
    D4 2026-11-14 09:00  CP fb sent +3m · CP telegram sent +4m · 01 fb sent +15m
                         00004 fb sent +60m · 00004 zalo awaiting_approval
                         79 fb retry_wait · 26734 fb needs_review
    D5 2026-11-15 00:00  01 fb pending                      (the midnight after 2026-11-14)
    also in the period: a local article of 01 (sent) and a directive seen as a source's
    backlog (no posts): neither is a directive of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from publisher.domain import VIETNAM_TZ, Role, RoleGrant, User
from publisher.store.sql import SqlRepository
from publisher.store.tables import (
    ArticleRow,
    ChannelAccountRow,
    DeliveryRow,
    PostRow,
    RecallRow,
    UnitRow,
    WithdrawalRow,
)

UNITS = [
    ("CP", "Cổng Thông tin điện tử Chính phủ", "central", None),
    ("BYT", "Bộ Y tế", "ministry", "CP"),
    ("01", "Thành phố Hà Nội", "province", "CP"),
    ("79", "Thành phố Hồ Chí Minh", "province", "CP"),
    ("00004", "Phường Ba Đình", "commune", "01"),
    ("26734", "Phường Sài Gòn", "commune", "79"),
]
PATHS = {
    "CP": "/CP/",
    "BYT": "/CP/BYT/",
    "01": "/CP/01/",
    "79": "/CP/79/",
    "00004": "/CP/01/00004/",
    "26734": "/CP/79/26734/",
}
USERS = [
    User("admin", "Quản trị", grants=(RoleGrant("CP", Role.ADMIN),)),
    User("hanoi", "Biên tập Hà Nội", grants=(RoleGrant("01", Role.EDITOR),)),
    User("ghost", "Không vai trò"),
]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VIETNAM_TZ)


# (title, published, posts, deliveries: (unit, account suffix, platform, state, minutes sent))
Delivery = tuple[str, str, str, str, int | None]
DIRECTIVES: dict[str, tuple[datetime, list[str], list[Delivery]]] = {
    "D1": (local("2026-11-01T10:00"), ["01"], [("01", "facebook", "facebook", "sent", 1)]),
    "D2": (
        local("2026-11-12T08:00"),
        ["CP", "BYT", "01", "00004", "79", "26734"],
        [
            ("CP", "facebook", "facebook", "sent", 2),
            ("01", "facebook", "facebook", "sent", 10),
            ("01", "zalo", "zalo", "failed", None),
            ("00004", "facebook", "facebook", "sent", 30),
            ("79", "facebook", "facebook", "expired", None),
            ("26734", "facebook", "facebook", "pending", None),
        ],
    ),
    "D3": (
        local("2026-11-13T09:00"),
        ["CP", "01", "00004", "79"],
        [
            ("CP", "facebook", "facebook", "sent", 1),
            ("01", "facebook", "facebook", "sent", 5),
            ("00004", "facebook", "facebook", "cancelled", None),
            ("79", "facebook", "facebook", "cancelled", None),
        ],
    ),
    "D4": (
        local("2026-11-14T09:00"),
        ["CP", "01", "00004", "79", "26734"],
        [
            ("CP", "facebook", "facebook", "sent", 3),
            ("CP", "telegram", "telegram", "sent", 4),
            ("01", "facebook", "facebook", "sent", 15),
            ("00004", "facebook", "facebook", "sent", 60),
            ("00004", "zalo", "zalo", "awaiting_approval", None),
            ("79", "facebook", "facebook", "retry_wait", None),
            ("26734", "facebook", "facebook", "needs_review", None),
        ],
    ),
    "D5": (local("2026-11-15T00:00"), ["01"], [("01", "facebook", "facebook", "pending", None)]),
}
# Withdrawals of D3's recall (of the whole directive), by unit; and of D2's post at 79.
D3_WITHDRAWALS = {
    "CP": "withdrawn",
    "01": "needs_manual_removal",
    "00004": "not_sent",
    "79": "not_sent",
}


@dataclass(frozen=True)
class DirectivesWorld:
    engine: sa.Engine
    url: str
    ids: dict[str, int]  # D1 … D5, "local", "backlog"


def build_directives_world(engine: sa.Engine, url: str) -> DirectivesWorld:
    with Session(engine) as session:
        for code, name, kind, parent in UNITS:
            session.add(
                UnitRow(
                    code=code,
                    name=name,
                    kind=kind,
                    parent_code=parent,
                    path=PATHS[code],
                    depth=PATHS[code].count("/") - 2,
                )
            )
            session.flush()
        accounts = {
            (unit, suffix, platform)
            for _, _, deliveries in DIRECTIVES.values()
            for unit, suffix, platform, _, _ in deliveries
        }
        for unit, suffix, platform in sorted(accounts):
            session.add(
                ChannelAccountRow(
                    id=f"{unit}.{suffix}", unit_code=unit, platform=platform, external_id="x"
                )
            )
        session.commit()
    SqlRepository(engine).upsert_users(USERS)

    ids: dict[str, int] = {}
    with Session(engine) as session:

        def article(key: str, kind: str, published: datetime, backlog: bool = False) -> int:
            row = ArticleRow(
                guid=key,
                url=f"https://chinhphu.vn/{key}",
                canonical_url=f"https://chinhphu.vn/{key}",
                content_hash=key,
                title=f"Chỉ đạo {key} về phòng chống bão" if kind == "directive" else key,
                published_at=published,
                kind=kind,
                unit_code="CP" if kind == "directive" else "01",
                backlog=backlog,
                routed=not backlog,
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            ids[key] = row.id
            return row.id

        posts: dict[tuple[str, str], PostRow] = {}
        deliveries: dict[tuple[str, str], DeliveryRow] = {}
        for key, (published, units, planned) in DIRECTIVES.items():
            article_id = article(key, "directive", published)
            for unit in units:
                post = PostRow(article_id=article_id, unit_code=unit, state="approved")
                session.add(post)
                session.flush()
                posts[key, unit] = post
            for unit, suffix, platform, state, minutes in planned:
                sent = published + timedelta(minutes=minutes) if minutes is not None else None
                post = posts[key, unit]
                assert post.id is not None
                row = DeliveryRow(
                    post_id=post.id,
                    article_id=article_id,
                    unit_code=unit,
                    account_id=f"{unit}.{suffix}",
                    platform=platform,
                    state=state,
                    due_at=published,
                    sent_at=sent,
                    created_at=published,
                    updated_at=sent or published,
                )
                session.add(row)
                session.flush()
                deliveries[key, f"{unit}.{suffix}"] = row

        news = article("local", "article", local("2026-11-13T10:00"))
        news_post = PostRow(article_id=news, unit_code="01", state="approved")
        session.add(news_post)
        session.flush()
        assert news_post.id is not None
        session.add(
            DeliveryRow(
                post_id=news_post.id,
                article_id=news,
                unit_code="01",
                account_id="01.facebook",
                platform="facebook",
                state="sent",
                due_at=local("2026-11-13T10:00"),
                sent_at=local("2026-11-13T10:05"),
            )
        )
        article("backlog", "directive", local("2026-11-13T11:00"), backlog=True)

        def recall(key: str, scope: str, post: PostRow | None, states: dict[str, str]) -> None:
            at = DIRECTIVES[key][0] + timedelta(hours=2)
            row = RecallRow(
                scope=scope,
                article_id=ids[key],
                post_id=post.id if post is not None else None,
                reason="sai số liệu",
                requested_by="admin",
                requested_at=at,
                cancelled=sum(1 for s in states.values() if s == "not_sent"),
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            for unit, state in states.items():
                delivery = deliveries[key, f"{unit}.facebook"]
                assert delivery.id is not None
                session.add(
                    WithdrawalRow(
                        recall_id=row.id,
                        delivery_id=delivery.id,
                        post_id=delivery.post_id,
                        unit_code=unit,
                        account_id=delivery.account_id,
                        platform=delivery.platform,
                        state=state,
                        due_at=at,
                        withdrawn_at=at + timedelta(minutes=1) if state == "withdrawn" else None,
                        created_at=at,
                        updated_at=at,
                    )
                )

        recall("D3", "article", None, D3_WITHDRAWALS)
        recall("D2", "post", posts["D2", "79"], {"79": "not_sent"})
        session.commit()
    return DirectivesWorld(engine, url, ids)
