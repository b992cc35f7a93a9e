"""`publisher demo`: the whole product on the embedded default, start to finish, in under a minute.

A fresh working folder with the sample deployment (central portal, ministries, 34 provinces,
sample communes, accounts on every platform) and SQLite; the sandbox and a sample portal served
on a free loopback port. Then, as in production: poll the portal (its first poll is backlog,
recorded and never published), poll again as new items appear, take one pushed article through
the signed intake API, route the directives down the tree, approve what a Hanoi approver may
approve and leave the rest waiting, inject real faults (a rate limit, an expired token, lost
replies), deliver, reconcile, and print what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount

from channels.sandbox import make_app as make_sandbox
from publisher.delivery.worker import WorkerConfig
from publisher.demo.content import DemoPortal
from publisher.fetch import Fetcher
from publisher.ingest.intake import HEADER_SIGNATURE, HEADER_SOURCE, HEADER_TIMESTAMP, sign
from publisher.ingest.poller import Poller
from publisher.reports import load_coverage, load_recall
from publisher.runtime import Runtime, build_runtime
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.tables import DeliveryRow, table_of
from publisher.workspace import Workspace, sync_directory

MARKER = ".publisher-demo"  # only a folder carrying this marker is ever wiped by the demo
PUSH_SECRET = "demo-push-secret-not-for-production"
APPROVER = "duyet.hanoi"
APPROVER_HCM = "duyet.hcm"


class DemoError(Exception):
    """The demo cannot start (e.g. its folder holds something that is not a demo)."""


@dataclass
class DemoReport:
    home: Path
    seconds: float = 0.0
    backlog: int = 0
    posts: int = 0
    deliveries: int = 0
    approved: int = 0
    waiting: int = 0
    faults: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    ledger: Counter[str] = field(default_factory=Counter)
    ledger_keys: list[tuple[str, str, str]] = field(default_factory=list)  # platform, account, hash
    problems: list[str] = field(default_factory=list)
    directive: str = ""
    coverage: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    # The recall step: the directive taken back everywhere.
    recall: dict[str, Any] = field(default_factory=dict)  # the recall report's JSON
    ledger_withdrawn: int = 0  # sandbox ledger entries marked withdrawn afterwards


class LateApp:
    """An ASGI app whose target is set after the server started: the publisher's Viber
    webhook needs the runtime, which is built once the sandbox is already serving."""

    def __init__(self) -> None:
        self.app: Starlette | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            await JSONResponse({"error": "not ready"}, status_code=503)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class LoopbackServer:
    """An ASGI app served by uvicorn on 127.0.0.1 and a free port, in a background thread."""

    def __init__(self, app: Starlette) -> None:
        # "critical": an injected lost reply is an exception by design; its traceback is noise.
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-sandbox", daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise DemoError("the sandbox server did not start on 127.0.0.1")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables for the demo's duration only (the caller's shell is left as it was)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def prepare_folder(home: Path) -> Workspace:
    """A clean demo folder: wiped only if an earlier demo made it (safe to run twice)."""
    if home.exists():
        if not (home / MARKER).exists():
            raise DemoError(
                f"{home}: exists and was not made by `publisher demo`; choose another --dir"
            )
        shutil.rmtree(home)
    workspace = Workspace(home)
    workspace.create()
    (home / MARKER).write_text("made by publisher demo; wiped and rebuilt on every run\n")
    return workspace


def write_demo_sources(workspace: Workspace, portal_url: str) -> None:
    """The sample deployment's sources, pointed at the bundled portal on loopback."""
    (workspace.config_dir / "sources.toml").write_text(
        f"""# Demo sources: the bundled portal served on loopback (allowed for the demo only).
[[source]]
id = "cp-chi-dao-dieu-hanh"
unit = "CP"
kind = "page"
url = "{portal_url}/chi-dao.html"
article_kind = "directive"
allow_private_network = true
selectors = {{ links = ".box-stream-item a.box-stream-link-title", title = "h1.detail-title", \
date = ".detail-time", lead = ".detail-sapo", body = ".detail-content" }}

[[source]]
id = "cp-tin-noi-bat"
unit = "CP"
kind = "feed"
url = "{portal_url}/home.rss"
allow_private_network = true

[[source]]
id = "hanoi-tin-chi-dao"
unit = "01"
kind = "feed"
url = "{portal_url}/hanoi.rss"
allow_private_network = true

[[source]]
id = "hcm-cms"
unit = "79"
kind = "push"
push_secret = "env:PUBLISHER_PUSH_SECRET_HCM"
""",
        encoding="utf-8",
    )
    # The demo may run at any hour: no quiet hours, and a cascade spread over seconds.
    (workspace.config_dir / "schedule.toml").write_text(
        "# Demo schedule: posts go out at once, whatever the hour.\n"
        "stagger_seconds = 3\nurgent_stagger_seconds = 1\n"
        "[default]\nquiet_hours = []\nmin_gap_minutes = 0\n",
        encoding="utf-8",
    )


def external_id(runtime: Runtime, account_id: str) -> str:
    account = runtime.repository.get_account(account_id)
    if account is None:
        raise DemoError(f"sample account {account_id} is missing from accounts.toml")
    return account.external_id


def fault_spec(runtime: Runtime) -> tuple[dict[str, Any], list[str]]:
    """Realistic trouble, each aimed at one account, each firing once."""
    faults = [
        (
            {"platform": "telegram", "account": external_id(runtime, "CP.telegram"),
             "kind": "rate_limit", "next": 1, "wait": 2},
            "Telegram CP.telegram: 429 Too Many Requests, retry_after 2 s → retried after it",
        ),
        (
            {"platform": "facebook", "account": external_id(runtime, "40.facebook"),
             "kind": "expired_token", "rate": 1.0},
            "Facebook 40.facebook (Nghệ An): token expired → account stopped, its posts held, "
            "admins alerted",
        ),
        (
            {"platform": "zalo", "account": external_id(runtime, "01.zalo"),
             "kind": "reply_lost", "next": 1},
            "Zalo 01.zalo (Hà Nội): accepted but reply lost → unknown → reconciled by read-back",
        ),
        (
            {"platform": "telegram", "account": external_id(runtime, "79.telegram"),
             "kind": "reply_lost", "next": 1},
            "Telegram 79.telegram (TP.HCM): reply lost, no read-back → needs a person",
        ),
    ]  # fmt: skip
    return {"seed": 7, "faults": [spec for spec, _ in faults]}, [text for _, text in faults]


async def push_article(runtime: Runtime, body: bytes) -> dict[str, Any]:
    """Send one article through the signed intake API, as a provincial CMS would."""
    timestamp = str(int(runtime.clock().timestamp()))
    headers = {
        HEADER_SOURCE: "hcm-cms",
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: sign(PUSH_SECRET.encode(), timestamp, body),
        "content-type": "application/json",
    }
    transport = httpx.ASGITransport(app=runtime.intake_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        reply = await client.post("/articles", content=body, headers=headers)
    if reply.status_code >= 300:
        raise DemoError(f"intake refused the pushed article: {reply.status_code} {reply.text}")
    result: dict[str, Any] = reply.json()
    return result


def delivery_counts(runtime: Runtime) -> dict[str, int]:
    deliveries = runtime.repository.status_counts().to_json()["deliveries"]
    assert isinstance(deliveries, dict)
    return deliveries


async def deliver(runtime: Runtime, console: Console) -> None:
    """Run the worker until nothing is due soon, with a progress bar over the deliveries."""
    worker = runtime.worker(
        WorkerConfig(
            owner="demo-worker",
            request_timeout_s=15.0,
            lease_margin_s=1.0,
            sweep_every_s=0.5,
            poll_s=0.1,
        )
    )
    settled = ("sent", "failed", "needs_review", "expired", "cancelled")
    counts = delivery_counts(runtime)
    total = sum(counts.values()) - counts["awaiting_approval"]
    columns = (
        TextColumn("[bold]Gửi bài · delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("deliver", total=total)
        stop = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                counts = delivery_counts(runtime)
                progress.update(task, completed=sum(counts[s] for s in settled))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.3)

        watcher = asyncio.create_task(watch())
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            await worker.run(until_idle=True)
            # Idle now; wait only for work that becomes due shortly (a rate-limit retry).
            # Due-but-idle work is held on purpose (a stopped account, a pause): not waited for.
            now = runtime.clock()
            upcoming = runtime.service.store.next_due_at(now)
            if upcoming is None or not 0 < (upcoming - now).total_seconds() <= 20:
                break
            await asyncio.sleep((upcoming - now).total_seconds())
        stop.set()
        await watcher
        counts = delivery_counts(runtime)
        progress.update(task, completed=sum(counts[s] for s in settled))


def run_demo(home: Path, console: Console) -> DemoReport:
    started = time.monotonic()
    report = DemoReport(home=home.resolve())
    workspace = prepare_folder(home)
    portal = DemoPortal(datetime.now(UTC))
    sandbox = make_sandbox(seed=7)
    # The publisher's side of callbacks (Viber sets a webhook before the first post) is served
    # beside the sandbox, as `publisher run` would serve it at PUBLISHER_PUBLIC_URL.
    hooks = LateApp()
    server = LoopbackServer(
        Starlette(
            routes=[
                Mount("/portal", portal.app()),
                Mount("/publisher", hooks),
                Mount("/", sandbox),
            ]
        )
    )
    url = server.start()
    portal.values["sandbox"] = url
    console.print(f"[bold]1.[/] Hộp cát · sandbox of every platform on [cyan]{url}[/]")
    env = {
        "PUBLISHER_HOME": str(workspace.home),
        "PUBLISHER_SANDBOX_URL": url,
        "PUBLISHER_PUSH_SECRET_HCM": PUSH_SECRET,
        "PUBLISHER_PUBLIC_URL": f"{url}/publisher",
    }
    saved_database_url = os.environ.pop("DATABASE_URL", None)  # the demo is the embedded default
    try:
        with environment(env):
            asyncio.run(_run(workspace, portal, url, report, console, hooks))
    finally:
        if saved_database_url is not None:
            os.environ["DATABASE_URL"] = saved_database_url
        server.stop()
    report.seconds = time.monotonic() - started
    return report


async def _run(
    workspace: Workspace,
    portal: DemoPortal,
    url: str,
    report: DemoReport,
    console: Console,
    hooks: LateApp,
) -> None:
    write_demo_sources(workspace, f"{url}/portal")
    config = workspace.load_config()
    workspace.upgrade_database()
    sync_directory(config, workspace.repository())
    runtime = build_runtime(workspace)
    hooks.app = Starlette(routes=[Mount("/viber", runtime.viber_webhook_app())])
    try:
        console.print(
            f"[bold]2.[/] Cấu hình mẫu · sample deployment: {len(config.units)} units, "
            f"{len(config.accounts)} channel accounts, {len(config.users)} users "
            f"([dim]{workspace.home}[/])"
        )
        async with Fetcher() as fetcher:
            poller = Poller(runtime.ingest_store(), fetcher)
            first = await poller.run_cycle(config.sources, now=runtime.clock(), only_due=False)
            report.backlog = sum(o.new for o in first.outcomes if o.backlog)
            errors = [f"{o.source_id}: {o.error}" for o in first.outcomes if o.error]
            if errors:
                raise DemoError("; ".join(errors))
            console.print(
                f"[bold]3.[/] Lần quét đầu · first poll: {report.backlog} older items recorded "
                "as backlog (never published)"
            )
            portal.phase = "fresh"
            second = await poller.run_cycle(config.sources, now=runtime.clock(), only_due=False)
        new_ids = [i for o in second.outcomes if not o.backlog for i in o.new_ids]
        await push_article(runtime, portal.pushed_article())  # routed by the intake callback
        runtime.route_new(new_ids)
        counts = delivery_counts(runtime)
        console.print(
            f"[bold]4.[/] Tin mới · new: {len(new_ids)} polled (2 central directives among them) "
            f"+ 1 pushed by TP.HCM's CMS → {sum(counts.values())} deliveries "
            f"across {len(runtime.channels)} platforms"
        )
        approved = [
            *runtime.service.approve(runtime.service.pending_for(APPROVER), APPROVER),
            *runtime.service.approve(runtime.service.pending_for(APPROVER_HCM), APPROVER_HCM),
        ]
        report.approved = len(approved)
        report.waiting = len(runtime.service.pending_for("admin"))
        console.print(
            f"[bold]5.[/] Duyệt · approval: directives trusted (auto-approved); {APPROVER} and "
            f"{APPROVER_HCM} approved {len(approved)} local post(s); {report.waiting} post(s) "
            "left waiting for an approver (see the TUI)"
        )
        spec, described = fault_spec(runtime)
        async with httpx.AsyncClient(base_url=url) as client:
            (await client.post("/_sandbox/faults", json=spec)).raise_for_status()
        report.faults = described
        console.print("[bold]6.[/] Sự cố giả lập · injected faults:")
        for line in described:
            console.print(f"   • {line}")
        await deliver(runtime, console)
        report.status = runtime.repository.status_counts().to_json()
        async with httpx.AsyncClient(base_url=url) as client:
            ledger = (await client.get("/_sandbox/ledger")).json()
        report.ledger = Counter(entry["platform"] for entry in ledger)
        report.ledger_keys = [(e["platform"], e["account"], e["body_sha256"]) for e in ledger]
        report.deliveries = sum(delivery_counts(runtime).values())
        posts = report.status["posts"]
        report.posts = sum(posts.values()) if isinstance(posts, dict) else 0
        coverage = load_coverage(runtime.engine, runtime.clock())
        report.directive = coverage.article.title
        report.coverage = [
            (r.label, r.units_reached, r.units_targeted, r.sent, r.targeted)
            for r in (*coverage.levels, coverage.total)
        ]
        report.problems = problem_lines(runtime)
        await recall_directive(runtime, coverage.article.id, url, report, console)
    finally:
        await runtime.aclose()


async def recall_directive(
    runtime: Runtime, article_id: int, url: str, report: DemoReport, console: Console
) -> None:
    """Recall the central directive from every unit, let the workers take it back, report."""
    result = runtime.service.recall(
        "admin",
        article_id=article_id,
        reason="ban hành nhầm · sent in error (demo)",
        notice="Thông tin này đã được thu hồi để đính chính. · Withdrawn for correction.",
    )
    console.print(
        f"[bold]7.[/] Thu hồi · recall of the directive everywhere: {len(result.posts)} posts, "
        f"{result.cancelled} deliveries stopped before sending, {result.to_withdraw} to take back"
    )
    worker = runtime.worker(
        WorkerConfig(
            owner="demo-recall",
            request_timeout_s=15.0,
            lease_margin_s=1.0,
            sweep_every_s=0.5,
            poll_s=0.1,
        )
    )
    recalls = SqlRecallStore(runtime.service.store)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        await worker.run(until_idle=True)
        now = runtime.clock()
        upcoming = recalls.next_withdrawal_due()
        if upcoming is None or not 0 < (upcoming - now).total_seconds() <= 20:
            break
        await asyncio.sleep((upcoming - now).total_seconds())
    report.recall = load_recall(runtime.engine, runtime.clock(), result.recall_id).to_json()
    async with httpx.AsyncClient(base_url=url) as client:
        ledger = (await client.get("/_sandbox/ledger")).json()
    report.ledger_withdrawn = sum(1 for entry in ledger if entry.get("withdrawn"))


def problem_lines(runtime: Runtime) -> list[str]:
    """What needs a person: stopped accounts and deliveries whose outcome is not known."""
    lines = []
    for account in runtime.repository.list_accounts():
        if account.status.value != "active":
            lines.append(f"account {account.id}: {account.status.value} (renew its token)")
    table = table_of(DeliveryRow)
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.id, table.c.account_id, table.c.state, table.c.last_error).where(
                table.c.state.in_(["needs_review", "failed", "unknown"])
            )
        )
        for row in rows:
            lines.append(f"delivery {row.id} ({row.account_id}): {row.state} — {row.last_error}")
    return lines


def print_summary(report: DemoReport, console: Console) -> None:
    status = report.status
    table = Table(title="Kết quả · summary", show_header=True)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("bài · articles", str(status.get("articles", 0)))
    table.add_row("  of which backlog (not published)", str(report.backlog))
    table.add_row("tin đăng · posts", str(report.posts))
    for state, n in status.get("posts", {}).items():
        if n:
            table.add_row(f"  {state}", str(n))
    table.add_row("lượt gửi · deliveries", str(report.deliveries))
    for state, n in status.get("deliveries", {}).items():
        if n:
            table.add_row(f"  {state}", str(n))
    console.print(table)
    ledger = Table(title="Sổ hộp cát · sandbox ledger (accepted posts)")
    for platform in sorted(report.ledger):
        ledger.add_column(platform, justify="right")
    ledger.add_row(*(str(report.ledger[p]) for p in sorted(report.ledger)))
    console.print(ledger)
    if report.coverage:
        cover = Table(title=f"Độ phủ chỉ đạo · directive coverage: {report.directive}")
        cover.add_column("level")
        cover.add_column("units reached", justify="right")
        cover.add_column("posts sent", justify="right")
        for label, reached, units, sent, targeted in report.coverage:
            share = f"{100 * sent / targeted:.0f}%" if targeted else "–"
            cover.add_row(label, f"{reached}/{units}", f"{sent}/{targeted} ({share})")
        console.print(cover)
    if report.recall:
        total = report.recall["total"]
        recall = Table(title="Thu hồi chỉ đạo · directive recall (withdrawn on N of M channels)")
        for name in ("platform", "withdrawn", "needs manual removal", "failed", "not sent"):
            recall.add_column(name, justify="left" if name == "platform" else "right")
        for row in (*report.recall["by_platform"], total):
            recall.add_row(
                row["label"],
                f"{row['withdrawn']}/{row['channels']}",
                str(row["needs_manual_removal"]),
                str(row["failed"]),
                str(row["not_sent"]),
            )
        console.print(recall)
        console.print(
            f"Thu hồi · recall: withdrawn on {total['withdrawn']} of {total['channels']} "
            f"channels; {len(report.recall['needs_manual_removal'])} for a person to remove "
            f"by hand (`report recall`); lag median {_lag(total['median_lag_s'])}, "
            f"max {_lag(total['max_lag_s'])}"
        )
    if report.problems:
        console.print("[bold]Cần người xử lý · needs a person:[/]")
        for line in report.problems:
            console.print(f"  • {line}")
    home = report.home
    # Name the command as the user typed it (.venv/bin/publisher is usually not on PATH).
    command = sys.argv[0] if Path(sys.argv[0]).name == "publisher" else "publisher"
    console.print(
        f"Hoàn tất trong {report.seconds:.1f} s · done in {report.seconds:.1f} s.\n"
        "Xem tiếp · where to look next:\n"
        f"  PUBLISHER_HOME={home} {command} tui --as {APPROVER}\n"
        f"  PUBLISHER_HOME={home} {command} report coverage --format png\n"
        f"  PUBLISHER_HOME={home} {command} report recall\n"
        f"  PUBLISHER_HOME={home} {command} status"
    )


def _lag(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.1f} s"


def report_json(report: DemoReport) -> str:
    return json.dumps(
        {
            "home": str(report.home),
            "seconds": round(report.seconds, 1),
            "backlog": report.backlog,
            "status": report.status,
            "ledger": dict(report.ledger),
            "coverage": [
                {
                    "level": label,
                    "units_reached": reached,
                    "units": units,
                    "sent": sent,
                    "targeted": targeted,
                }
                for label, reached, units, sent, targeted in report.coverage
            ],
            "problems": report.problems,
            "recall": report.recall["total"] if report.recall else None,
        },
        ensure_ascii=False,
    )
