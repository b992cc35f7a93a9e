"""One delivery worker process for `python -m bench pgworkers` (not a scenario itself).

    python -m bench.pgworker DB_URL SCHEMA OWNER READY_FILE GO_FILE OUT_FILE

Imports and connects, writes READY_FILE, waits for GO_FILE, then runs the real `Worker`
(claim with FOR UPDATE SKIP LOCKED, fenced writes, attempt rows, the real `AdaptingPreparer`
building each payload from the article) until nothing is left, against channels that accept
at once. Writes OUT_FILE: {started, finished (wall clock), outcomes, claimed [(id, attempt)]}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from channels.base import Adapted, Channel, Credentials, Receipt, Template, payload_hash
from publisher.delivery.prepare import AdaptingPreparer
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.domain import Article, ChannelAccount, Platform, Unit
from publisher.store.delivery_sql import SqlDeliveryStore, load_directory
from publisher.store.engine import make_engine


class InstantChannel(Channel):
    """A platform with no latency: the payload's hash is the remote id."""

    platform: ClassVar[Platform] = Platform.FACEBOOK
    display_name: ClassVar[str] = "instant"

    def __init__(self) -> None:
        super().__init__(http=None, base_url="bench://")  # type: ignore[arg-type]

    def adapt(self, article: Article, unit: Unit, template: Template) -> Adapted:
        return Adapted({"message": f"{template.lead_in}{article.title} — {unit.name}"})

    async def send(
        self, account: ChannelAccount, credentials: Credentials, payload: Mapping[str, Any]
    ) -> Receipt:
        return Receipt(remote_id=payload_hash({"account": account.id, **payload})[:16])


def instant_channels() -> dict[str, Channel]:
    return {
        p.value: type(f"Instant{p.name.title()}", (InstantChannel,), {"platform": p})()
        for p in Platform
    }


def main(argv: list[str]) -> int:
    url, schema, owner, ready, go, out = argv
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    units, accounts = load_directory(engine)
    by_code = {u.code: u for u in units}
    by_id = {a.id: a for a in accounts}
    channels = instant_channels()
    worker = Worker(
        SqlDeliveryStore(engine),
        channels,
        by_id.get,
        lambda account: Credentials("t"),
        WorkerConfig(owner=owner, batch=50, concurrency=50, poll_s=0.05),
        prepare=AdaptingPreparer(engine, channels, by_code.get),
        record_claims=True,
    )
    Path(ready).write_text("ready")
    while not Path(go).exists():
        time.sleep(0.01)
    started = time.time()
    stats = asyncio.run(worker.run(until_idle=True))
    finished = time.time()
    engine.dispose()
    Path(out).write_text(
        json.dumps(
            {
                "started": started,
                "finished": finished,
                "outcomes": stats.outcomes,
                "claimed": stats.claimed_ids,
                "database_errors": stats.database_errors,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
