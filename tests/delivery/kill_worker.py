"""A real worker process for the process-level tests (kill, stop, several workers, restart).

    python kill_worker.py DB_URL LEDGER OWNER [--null] [--batch N] [--concurrency N]
                          [--lease-timeout S] [--latency S] [--claims-out FILE]

It runs until idle. PUBLISHER_FAULT_KILL_AT (and PUBLISHER_FAULT_SIGNAL) make it signal itself
at the named point (publisher.delivery.faults). With --null the platform is a no-op that
accepts everything (for throughput and double-claim runs); otherwise a file ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from delivery_fakes import (
    BlindLedgerChannel,
    DeletingLedgerChannel,
    Faults,
    Ledger,
    LedgerChannel,
    NullChannel,
)

from channels.base import Credentials
from publisher.delivery import faults
from publisher.delivery.worker import Worker, WorkerConfig
from publisher.store.delivery_sql import SqlDeliveryStore
from publisher.store.engine import make_engine
from publisher.store.recall_sql import SqlRecallStore
from publisher.store.sql import SqlRepository

LEASE_TIMEOUT_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("ledger")
    parser.add_argument("owner")
    parser.add_argument("--null", action="store_true")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--lease-timeout", type=float, default=LEASE_TIMEOUT_S)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--claims-out")
    parser.add_argument("--withdraw", action="store_true", help="also take recalled posts back")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    engine = make_engine(args.db_url)
    repo = SqlRepository(engine)
    if args.null:
        channels = {"facebook": NullChannel()}
    else:
        ledger = Ledger(Path(args.ledger))
        facebook = DeletingLedgerChannel if args.withdraw else LedgerChannel
        channels = {
            "facebook": facebook(ledger, Faults(latency_s=args.latency)),
            "viber": BlindLedgerChannel(ledger),
        }
    store = SqlDeliveryStore(engine)
    worker = Worker(
        store,
        channels,
        repo.get_account,
        lambda account: Credentials("t"),
        WorkerConfig(
            owner=args.owner,
            batch=args.batch,
            concurrency=args.concurrency,
            request_timeout_s=args.lease_timeout,
            lease_margin_s=args.lease_timeout,
            poll_s=0.05,
            sweep_every_s=0.5,
            db_retry_s=0.3,
        ),
        fault=faults.from_env(),
        record_claims=bool(args.claims_out),
        withdrawals=SqlRecallStore(store) if args.withdraw else None,
    )
    stats = asyncio.run(worker.run(until_idle=True))
    if args.claims_out:
        Path(args.claims_out).write_text(json.dumps(stats.claimed_ids))
    print(json.dumps({"outcomes": stats.outcomes, "db_errors": stats.database_errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
