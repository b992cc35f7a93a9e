"""A real worker process for the kill tests: `python kill_worker.py DB_URL LEDGER OWNER`.

It runs until idle against the file ledger; PUBLISHER_FAULT_KILL_AT makes it SIGKILL itself
at the named point (publisher.delivery.faults).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from delivery_fakes import BlindLedgerChannel, Ledger, LedgerChannel

from channels.base import Credentials
from publisher.delivery import faults
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.sql import SqlRepository

LEASE_TIMEOUT_S = 5.0


def main() -> int:
    db_url, ledger_path, owner = sys.argv[1:4]
    engine = make_engine(db_url)
    ledger = Ledger(Path(ledger_path))
    repo = SqlRepository(engine)
    worker = Worker(
        SqlDeliveryStore(engine),
        {"facebook": LedgerChannel(ledger), "viber": BlindLedgerChannel(ledger)},
        repo.get_account,
        lambda account: Credentials("t"),
        WorkerConfig(
            owner=owner,
            batch=2,
            concurrency=1,
            request_timeout_s=LEASE_TIMEOUT_S,
            lease_margin_s=LEASE_TIMEOUT_S,
            poll_s=0.05,
        ),
        fault=faults.from_env(),
    )
    stats = asyncio.run(worker.run(until_idle=True))
    print(stats.outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
