"""A SQLite database with ~1,000,000 deliveries, built once and cached (issue 13).

Shape: the sample tree (central portal, 17 ministries, 34 provinces) plus ~98 generated
communes per province (~3,400 units); ~7,900 channel accounts on six platforms (every unit
on Facebook, most on Zalo, some on YouTube, Telegram, Viber, X); ~125 directives routed to
every unit and 300 local articles routed to a province's subtree, published over 90 days;
posts for every (article, unit); one delivery per (post, account) and one attempt row per
delivery that was tried. Deliveries of articles older than 5 days are final (sent ~94%,
failed, expired, cancelled) except a few left for a person (needs_review, unknown); the
newest are a mix of pending, awaiting approval, claimed and sent.

Rows go in with `executemany` on the driver (not the service path): a build takes well
under a minute. The file is cached under `$PUBLISHER_BENCH_CACHE` (default
`/tmp/vnpp-bench`), keyed by a hash of the schema (tables.py, migrations) and of this file,
so a schema change rebuilds it and later runs reuse it. `fresh_copy()` gives a scratch copy
for benchmarks that write (claim, archive).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from publisher.domain import Unit
from publisher.settings import load_config
from publisher.store.engine import MIGRATIONS_DIR, make_engine, upgrade
from publisher.store.sql import SqlRepository
from publisher.workspace import SAMPLE_CONFIG, sync_directory

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội: "now" for every figure
DAYS = 90
RECENT_DAYS = 5  # articles newer than this still have live deliveries; older are final
COMMUNES_PER_PROVINCE = 98
LOCAL_ARTICLES = 300
SEED = 13

# (platform, share of generated communes that run it)
COMMUNE_PLATFORMS = (
    ("facebook", 1.0),
    ("zalo", 0.8),
    ("youtube", 0.15),
    ("telegram", 0.15),
    ("viber", 0.1),
    ("x", 0.05),
)


@dataclass(frozen=True, slots=True)
class MillionDb:
    path: Path
    deliveries: int
    attempts: int
    posts: int
    articles: int
    units: int
    accounts: int
    built_s: float | None  # None: taken from the cache

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"


def cache_dir() -> Path:
    return Path(os.environ.get("PUBLISHER_BENCH_CACHE", "/tmp/vnpp-bench"))


def schema_key(target: int) -> str:
    digest = hashlib.sha256(str(target).encode())
    sources = [Path(__file__), Path(__file__).parents[1] / "publisher/store/tables.py"]
    sources += sorted(MIGRATIONS_DIR.glob("versions/*.py"))
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:12]


def _ts(moment: datetime) -> str:
    """How SQLAlchemy stores a UTCDateTime on SQLite: naive UTC text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _communes(config_units: list[Unit]) -> list[Unit]:
    provinces = [u for u in config_units if u.kind == "province"]
    return [
        Unit(f"X{p.code}{c:03d}", f"Xã {c + 1} thuộc {p.name}", "commune", p.code)
        for p in provinces
        for c in range(COMMUNES_PER_PROVINCE)
    ]


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = ("delivery", "delivery_attempt", "post", "article", "unit", "channel_account")
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _build(path: Path, target: int) -> None:
    rng = random.Random(SEED)
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    config = load_config(SAMPLE_CONFIG)
    repository = SqlRepository(engine)
    sync_directory(config, repository)
    communes = _communes(list(config.units))
    repository.upsert_units(communes)
    engine.dispose()

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    conn.execute("BEGIN")
    accounts: dict[str, list[tuple[str, str]]] = {}
    for account in config.accounts:
        accounts.setdefault(account.unit_code, []).append((account.id, account.platform.value))
    new_accounts = []
    for unit in communes:
        for platform, share in COMMUNE_PLATFORMS:
            if rng.random() < share:
                account_id = f"{unit.code}.{platform}"
                accounts.setdefault(unit.code, []).append((account_id, platform))
                new_accounts.append((account_id, unit.code, platform, f"ext-{account_id}"))
    conn.executemany(
        "INSERT INTO channel_account (id, unit_code, platform, external_id, display_name,"
        " credentials_ref, status) VALUES (?, ?, ?, ?, '', 'store:', 'active')",
        new_accounts,
    )
    units = {code: path for code, path in conn.execute("SELECT code, path FROM unit")}
    provinces = sorted(u.code for u in config.units if u.kind == "province")
    everyone = sorted(units)
    subtree = {
        p: sorted(c for c, up in units.items() if up.startswith(units[p])) for p in provinces
    }

    per_directive = sum(len(accounts.get(c, ())) for c in everyone)
    local_plan = [rng.choice(provinces) for _ in range(LOCAL_ARTICLES)]
    local_total = sum(sum(len(accounts.get(c, ())) for c in subtree[p]) for p in local_plan)
    directives = max(1, round((target - local_total) / per_directive))

    # Articles: directives and local news interleaved over DAYS, the newest last.
    kinds = ["directive"] * directives + ["article"] * LOCAL_ARTICLES
    rng.shuffle(kinds)
    article_rows, plans = [], []
    local_iter = iter(local_plan)
    total = len(kinds)
    for index, kind in enumerate(kinds, start=1):
        published = NOW - timedelta(days=DAYS) * (1 - index / total) - timedelta(minutes=30)
        owner = "CP" if kind == "directive" else next(local_iter)
        reach = everyone if kind == "directive" else subtree[owner]
        urgent = kind == "directive" and index % 9 == 0
        article_rows.append(
            (
                index,
                f"bench-{index}",
                f"https://baochinhphu.vn/bench-{index}.htm",
                f"https://baochinhphu.vn/bench-{index}.htm",
                f"{index:064x}",
                f"{'Chỉ thị' if kind == 'directive' else 'Tin địa phương'} số {index} về công"
                " tác chỉ đạo, điều hành",
                _ts(published),
                kind,
                owner,
                int(urgent),
                _ts(published),
            )
        )
        plans.append((index, kind, published, reach))
    conn.executemany(
        "INSERT INTO article (id, guid, url, canonical_url, content_hash, title, summary,"
        " body_html, body_text, published_at, images, language, source_name, kind, unit_code,"
        " urgent, backlog, routed, created_at) VALUES (?, ?, ?, ?, ?, ?, '', '', '', ?, '[]',"
        " 'vi', 'bench', ?, ?, ?, 0, 1, ?)",
        article_rows,
    )

    post_rows: list[tuple[object, ...]] = []
    delivery_rows: list[tuple[object, ...]] = []
    attempt_rows: list[tuple[object, ...]] = []
    post_id = delivery_id = attempt_id = 0
    recent = NOW - timedelta(days=RECENT_DAYS)
    for article_id, kind, published, reach in plans:
        fresh = published >= recent
        for unit in reach:
            post_id += 1
            waiting = kind == "article" and fresh and rng.random() < 0.3
            rejected = kind == "article" and not waiting and rng.random() < 0.01
            post_state = "awaiting_approval" if waiting else "rejected" if rejected else "approved"
            post_rows.append(
                (
                    post_id,
                    article_id,
                    unit,
                    post_state,
                    _ts(published),
                    _ts(published),
                    _ts(published + timedelta(minutes=1)),
                )
            )
            for account_id, platform in accounts.get(unit, ()):
                delivery_id += 1
                due = published + timedelta(seconds=rng.randint(0, 300))
                roll = rng.random()
                sent_at = None
                tries = 1
                if waiting:
                    state, tries = "awaiting_approval", 0
                elif rejected:
                    state, tries = "cancelled", 0
                elif fresh and published > NOW - timedelta(hours=12):
                    state = "pending" if roll < 0.6 else "claimed" if roll < 0.62 else "sent"
                    tries = 0 if state == "pending" else 1
                elif roll < 0.94:
                    state = "sent"
                elif roll < 0.97:
                    state, tries = "failed", rng.randint(1, 6)
                elif roll < 0.985:
                    state, tries = "expired", 0
                elif roll < 0.995:
                    state, tries = "cancelled", 0
                elif roll < 0.998:
                    state = "needs_review"
                else:
                    state = "unknown"
                finished = due + timedelta(seconds=rng.randint(5, 3600))
                if state == "sent":
                    sent_at = finished
                updated = finished if tries or state in ("expired", "cancelled") else due
                delivery_rows.append(
                    (
                        delivery_id,
                        post_id,
                        article_id,
                        unit,
                        account_id,
                        platform,
                        state,
                        _ts(due),
                        tries,
                        f"{platform}-{delivery_id}" if sent_at else None,
                        f"https://{platform}.example/{delivery_id}" if sent_at else None,
                        "(#100) Invalid parameter" if state == "failed" else None,
                        "permanent" if state == "failed" else None,
                        _ts(sent_at) if sent_at else None,
                        _ts(published),
                        _ts(updated),
                    )
                )
                for attempt in range(1, tries + 1):
                    attempt_id += 1
                    last = attempt == tries
                    outcome = {"sent": "sent", "failed": "failed"}.get(state, "unknown")
                    attempt_rows.append(
                        (
                            attempt_id,
                            delivery_id,
                            attempt,
                            "bench-worker",
                            _ts(due + timedelta(seconds=attempt)),
                            _ts(finished) if last else _ts(due + timedelta(seconds=attempt + 1)),
                            outcome if last else "retry",
                        )
                    )
        if len(delivery_rows) > 200_000:
            _flush(conn, post_rows, delivery_rows, attempt_rows)
    _flush(conn, post_rows, delivery_rows, attempt_rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def _flush(
    conn: sqlite3.Connection,
    posts: list[tuple[object, ...]],
    deliveries: list[tuple[object, ...]],
    attempts: list[tuple[object, ...]],
) -> None:
    conn.executemany(
        "INSERT INTO post (id, article_id, unit_code, state, lead_in, priority, approvals,"
        " scheduled_at, created_at, updated_at) VALUES (?, ?, ?, ?, '', 0, '[]', NULL, ?, ?)",
        [(p[0], p[1], p[2], p[3], p[5], p[6]) for p in posts],
    )
    conn.executemany(
        "INSERT INTO delivery (id, post_id, article_id, unit_code, account_id, platform, state,"
        " due_at, priority, attempt, remote_id, remote_url, last_error, error_kind, sent_at,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?)",
        deliveries,
    )
    conn.executemany(
        "INSERT INTO delivery_attempt (id, delivery_id, attempt, worker, started_at,"
        " finished_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)",
        attempts,
    )
    posts.clear()
    deliveries.clear()
    attempts.clear()


def million_db(target: int = 1_000_000) -> MillionDb:
    """The cached database of about `target` deliveries (built on first use)."""
    import time

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"deliveries-{target}-{schema_key(target)}.db"
    built_s = None
    if not path.exists():
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            partial = Path(scratch) / path.name
            _build(partial, target)
            os.replace(partial, path)  # atomic: a half-built file is never cached
        built_s = time.perf_counter() - started
    conn = sqlite3.connect(path)
    counts = _counts(conn)
    conn.close()
    return MillionDb(
        path=path,
        deliveries=counts["delivery"],
        attempts=counts["delivery_attempt"],
        posts=counts["post"],
        articles=counts["article"],
        units=counts["unit"],
        accounts=counts["channel_account"],
        built_s=built_s,
    )


def fresh_copy(db: MillionDb, folder: Path) -> Path:
    """A scratch copy for benchmarks that write (the cache stays as built)."""
    target = folder / db.path.name
    source = sqlite3.connect(db.path)
    source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    source.close()
    shutil.copyfile(db.path, target)
    return target
