"""A small, real publishing world for the read-model tests, built through the real path.

`publisher init`'s folder (sample config), Alembic migrations, the directory synced by
`SqlRepository`, articles recorded by the ingest pipeline into `SqlIngestStore`, fanned out by
`DeliveryService.route_article`, then decisions through the service and worker outcomes
through the delivery store, exactly as the running system would write them.

What is in it (NOW = 14/11/2026 10:00 Vietnam time):
- a central directive routed to the whole tree (auto-approved);
- own articles of Hà Nội (01, two), Hoàn Kiếm (S01001) and TP. Hồ Chí Minh (79), awaiting;
- duyet.hanoi approved the first Hà Nội article; duyet.hcm rejected the 79 article;
- duyet.hanoi moved the approved Hà Nội article to 15/11 09:00;
- pauses: subtree 22 (Quảng Ninh) in force, unit S22001 paused then resumed, channel x,
  unit S22002 until 12:00;
- worker outcomes: CP.facebook sent, 01.facebook failed, 01.telegram failed then retried by
  duyet.hanoi, 79.facebook failed, S01001.zalo unknown, 79.viber stopped (credentials).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from channels.base import Receipt
from publisher.delivery.jobs import Job
from publisher.domain import VIETNAM_TZ, Article, ArticleKind, DeliveryState, PauseScope, User
from publisher.ingest.pipeline import record_articles
from publisher.runtime import delivery_service
from publisher.service import DeliveryService
from publisher.settings import Config
from publisher.store.ingest_sql import SqlIngestStore
from publisher.store.sql import SqlRepository
from publisher.views import Views
from publisher.workspace import Workspace, sync_directory

NOW = datetime(2026, 11, 14, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
HN_APPROVED_AT = datetime(2026, 11, 15, 9, 0, tzinfo=VIETNAM_TZ)  # rescheduled to tomorrow
WORKER_NOW = NOW + timedelta(hours=12)  # when the worker ran (22:00, before quiet hours)

DIRECTIVE = "Chỉ thị về đẩy mạnh chuyển đổi số quốc gia"
HN_APPROVED = "Hà Nội khai trương trung tâm dữ liệu thành phố"
HN_WAITING = "Hà Nội mở đợt tiêm chủng mùa đông"
HOAN_KIEM = "Phường Hoàn Kiếm ra quân làm sạch phố cổ"
HCM = "TP. Hồ Chí Minh khánh thành cầu Thủ Thiêm 4"


def _article(guid: str, title: str, kind: ArticleKind, unit: str, hours_ago: int) -> Article:
    return Article(
        guid=f"test/{guid}",
        url=f"https://cong.example.gov.vn/{guid}.html",
        title=title,
        published_at=NOW - timedelta(hours=hours_ago),
        summary=f"Tóm tắt: {title}.",
        body_text=f"{title}. Nội dung chi tiết của bài viết.",
        kind=kind,
        unit_code=unit,
    )


@dataclass
class World:
    engine: sa.Engine
    config: Config
    service: DeliveryService
    views: Views
    article_ids: dict[str, int] = field(default_factory=dict)  # title → id
    delivery_ids: dict[str, int] = field(default_factory=dict)  # label → id

    def user(self, username: str) -> User:
        return next(u for u in self.config.users if u.username == username)

    def post_id(self, title: str, unit: str) -> int:
        post = sa.table("post", sa.column("id"), sa.column("article_id"), sa.column("unit_code"))
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(post.c.id).where(
                        post.c.article_id == self.article_ids[title], post.c.unit_code == unit
                    )
                ).scalar_one()
            )


def build_world(home: Path) -> World:
    workspace = Workspace(home)
    workspace.create()
    workspace.upgrade_database()
    config = workspace.load_config()
    engine = workspace.engine()
    sync_directory(config, SqlRepository(engine))
    service = delivery_service(workspace, config, clock=lambda: NOW)

    articles = [
        _article("chi-thi-cds", DIRECTIVE, ArticleKind.DIRECTIVE, "CP", 3),
        _article("hn-ttdl", HN_APPROVED, ArticleKind.ARTICLE, "01", 2),
        _article("hn-tiem-chung", HN_WAITING, ArticleKind.ARTICLE, "01", 1),
        _article("hk-ra-quan", HOAN_KIEM, ArticleKind.ARTICLE, "S01001", 1),
        _article("hcm-cau", HCM, ArticleKind.ARTICLE, "79", 1),
    ]
    report = record_articles(
        SqlIngestStore(engine),
        articles,
        source_id=config.sources[0].id,
        backlog=False,
        seen_at=NOW,
    )
    world = World(engine, config, service, Views(engine))
    for article, article_id in zip(articles, report.new_ids, strict=True):
        world.article_ids[article.title] = article_id
        service.route_article(article_id)

    service.approve([world.post_id(HN_APPROVED, "01")], "duyet.hanoi")
    service.reject([world.post_id(HCM, "79")], "duyet.hcm", "Trùng tin đã đăng")
    service.pause(PauseScope.SUBTREE, "22", "Bão số 13 đổ bộ", "quantri.quangninh")
    service.pause(PauseScope.UNIT, "S22001", "Đổi quản trị viên", "quantri.quangninh")
    service.resume(PauseScope.UNIT, "S22001", "Đã bàn giao", "quantri.quangninh")
    service.pause(PauseScope.CHANNEL, "x", "Nền tảng đang bảo trì", "admin")
    service.pause(
        PauseScope.UNIT, "S22002", "Mất điện", "quantri.quangninh", until=NOW + timedelta(hours=2)
    )
    service.reschedule([world.post_id(HN_APPROVED, "01")], "duyet.hanoi", HN_APPROVED_AT)

    # The worker: everything due is claimed, a few outcomes recorded, the rest given back.
    store = service.store
    jobs = store.claim("test-worker", WORKER_NOW, limit=10_000, lease_s=600)
    wanted = {
        ("CP.facebook", DIRECTIVE): "sent",
        ("01.facebook", DIRECTIVE): "failed",
        ("01.telegram", DIRECTIVE): "retried",
        ("79.facebook", DIRECTIVE): "failed",
        ("S01001.zalo", DIRECTIVE): "unknown",
        ("79.viber", DIRECTIVE): "stopped",
    }
    titles = {v: k for k, v in world.article_ids.items()}
    handled: dict[str, Job] = {}
    for job in jobs:
        label = wanted.get((job.account_id, titles[job.article_id]))
        if label is None:
            store.release(job, None, WORKER_NOW)
            continue
        handled[label] = job
        world.delivery_ids[f"{job.account_id} {label}"] = job.id
        if label == "sent":
            store.mark_sending(job, "hash", {"message": DIRECTIVE}, WORKER_NOW, 60)
            store.mark_sent(job, Receipt("123_456", "https://facebook.com/123_456"), WORKER_NOW)
        elif label in ("failed", "retried"):
            store.mark_final(
                job, DeliveryState.FAILED, "permanent", "(#100) Invalid parameter", WORKER_NOW
            )
        elif label == "unknown":
            store.mark_sending(job, "hash", {"message": DIRECTIVE}, WORKER_NOW, 60)
            store.mark_unknown(job, "connection reset after the request was sent", WORKER_NOW)
        elif label == "stopped":
            store.mark_sending(job, "hash", {"text": DIRECTIVE}, WORKER_NOW, 60)
            store.stop_account(job, "token revoked by the page admin", WORKER_NOW)
    missing = set(wanted.values()) - {label for label in handled}
    assert not missing, f"the world could not produce {missing}"
    service.retry(world.delivery_ids["01.telegram retried"], "duyet.hanoi", "đã kiểm tra")
    return world
