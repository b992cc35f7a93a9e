"""`publisher report coverage|directives|recall|receipts` and `publisher accounts check`
(issue 7)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from publisher import report_output
from publisher.cli.common import UserError
from publisher.credential_health import DEFAULT_HORIZON_DAYS, load_account_health
from publisher.domain import VIETNAM_TZ
from publisher.identity import IdentityRefused, current_os_user, resolve_identity, sandbox_enabled
from publisher.report_directives import DirectivesOverview, load_overview
from publisher.reports import (
    Coverage,
    ReportError,
    UnitRecord,
    load_coverage,
    load_recall,
    load_receipts,
    load_unit_record,
)
from publisher.store.sql import SqlRepository
from publisher.views import local_day_bounds
from publisher.workspace import Workspace

report_app = typer.Typer(help="Reports: who published what, when, where.")
accounts_app = typer.Typer(help="Channel accounts: credential health.")


def parse_when(text: str, option: str) -> datetime:
    """A date ("2026-11-01", midnight in Hà Nội) or an ISO time; no offset means +07:00."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=VIETNAM_TZ)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option}: {text!r} is not a date (YYYY-MM-DD) or an ISO time "
            "(YYYY-MM-DDTHH:MM[+07:00])"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=VIETNAM_TZ)


def parse_day(text: str, option: str) -> date:
    """A local date, YYYY-MM-DD (a day in Hà Nội)."""
    text = text.strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a date (YYYY-MM-DD)") from None


DEFAULT_PERIOD_DAYS = 30


def report_period(since: str | None, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[first day 00:00, the day after the last 00:00) in Hà Nội. Both days are included;
    by default the last 30 days, today included."""
    last = parse_day(until, "--until") if until else now.astimezone(VIETNAM_TZ).date()
    first = parse_day(since, "--since") if since else last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if last < first:
        if until:
            raise UserError(f"--until: {last} is before --since {first}")
        raise UserError(f"--since: {first} is after today ({last})")

    return local_day_bounds(first)[0], local_day_bounds(last)[1]


def checked_format(fmt: str, allowed: Sequence[str]) -> str:
    """The --format value, trimmed and lower-cased; one the command can write, or refused."""
    fmt = fmt.strip().lower()
    if fmt not in allowed:
        raise UserError(f"--format: {fmt!r} is not one of {', '.join(allowed)}")
    return fmt


@contextmanager
def report_engine() -> Iterator[tuple[Workspace, sa.Engine]]:
    """The working folder and its database, brought up to date, for one report; a report
    that cannot be made (ReportError) becomes the command's one-line refusal."""
    workspace = Workspace.from_env()
    workspace.upgrade_database()
    engine = workspace.engine()
    try:
        yield workspace, engine
    except ReportError as error:
        raise UserError(str(error)) from None
    finally:
        engine.dispose()


def default_output(workspace: Workspace, stem: str, fmt: str) -> Path:
    return workspace.home / "reports" / f"{stem}.{report_output.FILE_FORMATS[fmt]}"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _emit_coverage(coverage: Coverage, fmt: str, output: Path | None, workspace: Workspace) -> None:
    if fmt == "table":
        Console().print(report_output.coverage_renderable(coverage))
        return
    if fmt == "json" and output is None:
        print(report_output.to_json_text(coverage), end="")
        return
    path = output or default_output(workspace, f"coverage-{coverage.article.id}", fmt)
    if fmt == "json":
        _write_text(path, report_output.to_json_text(coverage))
    elif fmt == "csv":
        _write_text(path, report_output.coverage_csv(coverage))
    elif fmt == "xlsx":
        report_output.write_coverage_xlsx(coverage, path)
    else:
        report_output.write_coverage_png(coverage, path)
    print(path)


def _emit_record(record: UnitRecord, fmt: str, output: Path | None, workspace: Workspace) -> None:
    if fmt == "table":
        Console().print(report_output.unit_record_renderable(record))
        return
    if fmt == "png":
        raise UserError("--format png: charts are drawn for a directive's coverage; drop --since")
    if fmt == "json" and output is None:
        print(report_output.to_json_text(record), end="")
        return
    stem = f"unit-{record.unit.code}-{record.since.astimezone(VIETNAM_TZ):%Y%m%d}"
    path = output or default_output(workspace, stem, fmt)
    if fmt == "json":
        _write_text(path, report_output.to_json_text(record))
    elif fmt == "csv":
        _write_text(path, report_output.unit_record_csv(record))
    else:
        report_output.write_unit_record_xlsx(record, path)
    print(path)


def _emit_directives(
    overview: DirectivesOverview, fmt: str, output: Path | None, workspace: Workspace
) -> None:
    if not overview.rows:
        # Nothing to write: say so (whatever the format) rather than leave an empty file.
        print(
            "Không có chỉ đạo nào trong kỳ · no directive was published in "
            f"{report_output.period_text(overview)} (+07)"
        )
        return
    if fmt == "table":
        Console().print(report_output.directives_renderable(overview))
        return
    if fmt == "json" and output is None:
        print(report_output.to_json_text(overview), end="")
        return
    first, last = report_output.period_days(overview)
    stem = f"directives-{first:%Y%m%d}-{last:%Y%m%d}"
    path = output or default_output(workspace, stem, fmt)
    if fmt == "json":
        _write_text(path, report_output.to_json_text(overview))
    elif fmt == "csv":
        _write_text(path, report_output.directives_csv(overview))
    else:
        report_output.write_directives_xlsx(overview, path)
    print(path)


def register(app: typer.Typer) -> None:
    @report_app.command("coverage")
    def coverage(
        article: int | None = typer.Option(
            None, "--article", help="Article id (default: the newest directive)."
        ),
        fmt: str = typer.Option("table", "--format", help="table | csv | xlsx | png | json"),
        output: Path | None = typer.Option(
            None,
            "--output",
            help="File to write (default: <working folder>/reports/…; json goes to stdout).",
        ),
        since: str | None = typer.Option(
            None, "--since", help="With --unit: the unit's record from this date (YYYY-MM-DD)."
        ),
        until: str | None = typer.Option(
            None, "--until", help="With --since: end of the period (default: now)."
        ),
        unit: str | None = typer.Option(
            None,
            "--unit",
            help="Limit to this unit's subtree; with --since, the unit's publishing record.",
        ),
    ) -> None:
        """Who published what, when, where: units × channels with state and lag."""
        fmt = checked_format(fmt, report_output.FORMATS)
        if since is None and until is not None:
            raise UserError("--until: only meaningful with --since")
        if since is not None and unit is None:
            raise UserError("--since: needs --unit (a unit's publishing record over a period)")
        if since is not None and article is not None:
            raise UserError("--article and --since: choose one (a directive, or a unit's period)")
        now = datetime.now(UTC)
        with report_engine() as (workspace, engine):
            if since is not None and unit is not None:
                start = parse_when(since, "--since")
                end = parse_when(until, "--until") if until else now + timedelta(seconds=1)
                if end <= start:
                    raise UserError("--until: must be after --since")
                record = load_unit_record(engine, unit, start, end, now)
                _emit_record(record, fmt, output, workspace)
            else:
                result = load_coverage(engine, now, article, subtree_of=unit)
                _emit_coverage(result, fmt, output, workspace)

    @report_app.command("directives")
    def directives(
        since: str | None = typer.Option(
            None, "--since", help="First day (YYYY-MM-DD, Hà Nội; default: 29 days before --until)."
        ),
        until: str | None = typer.Option(
            None, "--until", help="Last day, included (YYYY-MM-DD, Hà Nội; default: today)."
        ),
        unit: str | None = typer.Option(
            None, "--unit", help="Only this unit's subtree (within what you may see)."
        ),
        fmt: str = typer.Option("table", "--format", help="table | csv | xlsx | json"),
        output: Path | None = typer.Option(
            None,
            "--output",
            help="File to write (default: <working folder>/reports/…; json goes to stdout).",
        ),
        as_user: str | None = typer.Option(
            None, "--as", help="Act as this user (sandbox, or users allowed to act for others)."
        ),
    ) -> None:
        """Every directive of a period, newest first: units, channels, sent, needing
        attention, on the way, cancelled, withdrawn, coverage %, lag (median, p95)."""
        fmt = checked_format(fmt, report_output.DIRECTIVES_FORMATS)
        now = datetime.now(UTC)
        start, end = report_period(since, until, now)
        with report_engine() as (workspace, engine):
            try:
                identity = resolve_identity(
                    current_os_user(),
                    as_user,
                    SqlRepository(engine),
                    sandbox_enabled(dict(os.environ)),
                )
            except IdentityRefused as error:
                raise UserError(str(error)) from None
            overview = load_overview(engine, start, end, now, identity.user, unit)
        _emit_directives(overview, fmt, output, workspace)

    @report_app.command("recall")
    def recall(
        recall_id: int | None = typer.Option(
            None, "--recall", help="Recall id (default: the newest recall)."
        ),
        fmt: str = typer.Option("table", "--format", help="table | json | csv"),
    ) -> None:
        """What a recall took back: withdrawn on N of M channels, what a person must remove,
        failures, lag (requested → withdrawn), by platform."""
        fmt = checked_format(fmt, report_output.RECALL_FORMATS)
        with report_engine() as (_, engine):
            report = load_recall(engine, datetime.now(UTC), recall_id)
        if fmt == "table":
            Console().print(report_output.recall_renderable(report))
        elif fmt == "json":
            print(report_output.to_json_text(report), end="")
        else:
            print(report_output.recall_csv(report), end="")

    @report_app.command("receipts")
    def receipts(
        since: str | None = typer.Option(
            None, "--since", help="From this day or time (+07:00; default: 7 days ago)."
        ),
        until: str | None = typer.Option(
            None, "--until", help="Up to this day or time, not included (default: now)."
        ),
        warnings_only: bool = typer.Option(
            False, "--warnings", help="Only warnings (e.g. a broadcast over quota), not ids."
        ),
        fmt: str = typer.Option("table", "--format", help="table | json"),
    ) -> None:
        """Ghi chú của kênh: what channels said beside sends that went out (a Zalo broadcast's
        message id, its monthly quota used up, an image left out)."""
        fmt = checked_format(fmt, report_output.RECEIPTS_FORMATS)
        now = datetime.now(UTC)
        end = parse_when(until, "--until") if until else now
        start = parse_when(since, "--since") if since else end - timedelta(days=7)
        with report_engine() as (_, engine):
            report = load_receipts(engine, start, end, warnings_only=warnings_only)
        if fmt == "table":
            Console().print(report_output.receipts_renderable(report))
        else:
            print(report_output.to_json_text(report), end="")

    @accounts_app.command("check")
    def check(
        horizon_days: int = typer.Option(
            DEFAULT_HORIZON_DAYS,
            "--horizon-days",
            min=0,
            help="Warn about tokens that expire within this many days.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Tokens expiring soon, failing or revoked, per unit."""
        now = datetime.now(UTC)
        with report_engine() as (_, engine):
            findings = load_account_health(engine, now, timedelta(days=horizon_days))
        if as_json:
            print(
                json.dumps(
                    {
                        "checked_at": now.isoformat(),
                        "horizon_days": horizon_days,
                        "problems": [f.to_json() for f in findings],
                    },
                    ensure_ascii=False,
                )
            )
            return
        if not findings:
            print(f"every account is healthy (horizon {horizon_days} days)")
            return
        table = Table(title=f"Sức khỏe tài khoản · credential health (horizon {horizon_days} d)")
        for name in ("unit", "account", "platform", "problem", "expires (+07)", "detail"):
            table.add_column(name)
        for finding in findings:
            table.add_row(
                finding.unit_code,
                finding.account_id,
                finding.platform,
                finding.problem.value,
                report_output.local_time(finding.token_expires_at),
                finding.describe(now),
            )
        Console().print(table)

    app.add_typer(report_app, name="report")
    app.add_typer(accounts_app, name="accounts")
