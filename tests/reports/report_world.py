"""A small demo-like database with known states and times, for reports checked to the row.

Units: CP (central) → BYT, BTC (ministries), 01, 79 (provinces) → 00004 (under 01),
26734 (under 79). The directive D was published at T0 = 2026-11-14 09:00 +07:00; the
report is made at T0 + 60 min. Deliveries of D (lag after T0):

    CP     facebook sent +2 min     telegram sent +1 min
    BYT    facebook sent +10 min    zalo failed
    BTC    facebook pending
    01     facebook sent +5 min     zalo sent +20 min       telegram needs_review
    79     facebook expired
    00004  facebook sent +30 min    telegram ×2: one sent +40 min, one pending
    26734  a post, but no channel account

Also an older directive (T0 − 2 days, 01 facebook sent +90 s) and a newer unit article of
01 (T0 + 10 min, facebook pending), so "newest directive" and periods are exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from publisher.store.engine import make_engine, sqlite_url, upgrade
from publisher.store.tables import (
    ArticleRow,
    ChannelAccountRow,
    DeliveryRow,
    PostRow,
    UnitRow,
)

T0 = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội
NOW = T0 + timedelta(minutes=60)

UNITS = [
    ("CP", "Cổng Thông tin điện tử Chính phủ", "central", None),
    ("BYT", "Bộ Y tế", "ministry", "CP"),
    ("BTC", "Bộ Tài chính", "ministry", "CP"),
    ("01", "Thành phố Hà Nội", "province", "CP"),
    ("79", "Thành phố Hồ Chí Minh", "province", "CP"),
    ("00004", "Phường Ba Đình", "commune", "01"),
    ("26734", "Phường Sài Gòn", "commune", "79"),
]

# (unit, account suffix, platform, state, minutes after T0 when sent)
DIRECTIVE_DELIVERIES = [
    ("CP", "facebook", "facebook", "sent", 2),
    ("CP", "telegram", "telegram", "sent", 1),
    ("BYT", "facebook", "facebook", "sent", 10),
    ("BYT", "zalo", "zalo", "failed", None),
    ("BTC", "facebook", "facebook", "pending", None),
    ("01", "facebook", "facebook", "sent", 5),
    ("01", "zalo", "zalo", "sent", 20),
    ("01", "telegram", "telegram", "needs_review", None),
    ("79", "facebook", "facebook", "expired", None),
    ("00004", "facebook", "facebook", "sent", 30),
    ("00004", "telegram", "telegram", "sent", 40),
    ("00004", "telegram2", "telegram", "pending", None),
]


@dataclass(frozen=True)
class DemoDb:
    engine: sa.Engine
    url: str
    directive_id: int
    old_directive_id: int
    article_id: int
    t0: datetime = T0
    now: datetime = NOW


def _path(code: str) -> str:
    parents = {c: p for c, _, _, p in UNITS}
    chain = [code]
    while parents[chain[-1]] is not None:
        chain.append(parents[chain[-1]])  # type: ignore[arg-type]
    return "/" + "/".join(reversed(chain)) + "/"


def build_demo_db(path: Path) -> DemoDb:
    url = sqlite_url(path)
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        for code, name, kind, parent in UNITS:
            p = _path(code)
            session.add(
                UnitRow(
                    code=code,
                    name=name,
                    kind=kind,
                    parent_code=parent,
                    path=p,
                    depth=p.count("/") - 2,
                )
            )
            session.flush()
        accounts = {(u, s, pl) for u, s, pl, _, _ in DIRECTIVE_DELIVERIES}
        for unit, suffix, platform in sorted(accounts):
            session.add(
                ChannelAccountRow(
                    id=f"{unit}.{suffix}", unit_code=unit, platform=platform, external_id="x"
                )
            )
        session.flush()

        def article(title: str, kind: str, published: datetime, unit: str) -> ArticleRow:
            row = ArticleRow(
                guid=title,
                url=f"https://example.gov.vn/{len(title)}",
                canonical_url=f"https://example.gov.vn/{title}",
                content_hash=title,
                title=title,
                published_at=published,
                kind=kind,
                unit_code=unit,
                routed=True,
            )
            session.add(row)
            session.flush()
            return row

        old = article("Chỉ đạo cũ", "directive", T0 - timedelta(days=2), "CP")
        directive = article("Công điện về phòng chống bão số 15", "directive", T0, "CP")
        news = article("Tin Hà Nội", "article", T0 + timedelta(minutes=10), "01")
        assert old.id
        assert directive.id
        assert news.id

        def post(article_row: ArticleRow, unit: str) -> PostRow:
            assert article_row.id is not None
            row = PostRow(article_id=article_row.id, unit_code=unit, state="approved")
            session.add(row)
            session.flush()
            return row

        def delivery(
            post_row: PostRow,
            article_row: ArticleRow,
            account: str,
            platform: str,
            state: str,
            sent_at: datetime | None,
        ) -> None:
            assert post_row.id is not None
            assert article_row.id is not None
            session.add(
                DeliveryRow(
                    post_id=post_row.id,
                    article_id=article_row.id,
                    unit_code=post_row.unit_code,
                    account_id=account,
                    platform=platform,
                    state=state,
                    due_at=article_row.published_at,
                    sent_at=sent_at,
                )
            )

        posts = {code: post(directive, code) for code, _, _, _ in UNITS}
        for unit, suffix, platform, state, minutes in DIRECTIVE_DELIVERIES:
            sent = T0 + timedelta(minutes=minutes) if minutes is not None else None
            delivery(posts[unit], directive, f"{unit}.{suffix}", platform, state, sent)
        old_post = post(old, "01")
        delivery(
            old_post,
            old,
            "01.facebook",
            "facebook",
            "sent",
            old.published_at + timedelta(seconds=90),
        )
        news_post = post(news, "01")
        delivery(news_post, news, "01.facebook", "facebook", "pending", None)
        session.commit()
        return DemoDb(engine, url, directive.id, old.id, news.id)
