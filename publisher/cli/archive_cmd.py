"""`publisher archive`: move finished deliveries out of the hot tables (issue 13)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import typer

from publisher.cli.common import UserError
from publisher.store.archive import (
    DEFAULT_BATCH,
    DEFAULT_OLDER_THAN_DAYS,
    ArchiveError,
    archive_finished,
)
from publisher.workspace import Workspace


def parse_days(text: str) -> float:
    """`--older-than`: a number of days, 0 or more (fractions allowed)."""
    try:
        days = float(text.strip())
    except ValueError:
        raise UserError(f"--older-than: {text!r} is not a number of days") from None
    if not math.isfinite(days) or days < 0:
        raise UserError(f"--older-than: {text!r}: give 0 days or more")
    return days


def register(app: typer.Typer) -> None:
    @app.command("archive")
    def archive(
        older_than: str = typer.Option(
            str(DEFAULT_OLDER_THAN_DAYS),
            "--older-than",
            help="Ngày · days: only deliveries finished and due longer ago than this.",
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Đếm, không chuyển · count what would move, move nothing."
        ),
        batch: int = typer.Option(
            DEFAULT_BATCH, "--batch", help="Deliveries per transaction (default 5,000)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Lưu trữ tin đã xong · archive finished deliveries (sent, failed, expired,
        cancelled) and their attempts, in batches; reports still count them."""
        days = parse_days(older_than)
        if batch < 1:
            raise UserError(f"--batch: {batch} is too small; give 1 or more")
        workspace = Workspace.from_env()
        workspace.upgrade_database()
        engine = workspace.engine()
        now = datetime.now(UTC)
        try:
            result = archive_finished(
                engine, now, timedelta(days=days), dry_run=dry_run, batch=batch
            )
        except ArchiveError as error:
            raise UserError(str(error)) from None
        finally:
            engine.dispose()
        if as_json:
            print(json.dumps(result.to_json(), ensure_ascii=False))
            return
        verb = "sẽ chuyển · would move" if dry_run else "đã chuyển · moved"
        print(
            f"{verb} {result.deliveries} deliveries, {result.attempts} attempts "
            f"(finished before {result.cutoff.isoformat(timespec='seconds')})"
            + ("" if dry_run else f" in {result.batches} batch(es), {result.seconds:.1f} s")
        )
