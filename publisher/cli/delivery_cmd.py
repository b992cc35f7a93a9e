"""Worker, decisions, pause/resume and audit commands (issue 4)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import typer

from publisher import audit
from publisher.cli.common import UserError
from publisher.domain import PauseScope
from publisher.identity import (
    Identity,
    IdentityRefused,
    current_os_user,
    resolve_identity,
    sandbox_enabled,
)
from publisher.service import DeliveryService, RecallResult, ServiceError
from publisher.settings import Config, ConfigError
from publisher.store.sql import SqlRepository
from publisher.workspace import Workspace

audit_app = typer.Typer(help="The audit trail (hash chain).")


@dataclass
class Context:
    workspace: Workspace
    config: Config
    engine: sa.Engine
    repository: SqlRepository

    def service(self) -> DeliveryService:
        return DeliveryService.from_config(self.engine, self.repository, self.config)


def open_context() -> Context:
    """The working folder's configuration and database (PUBLISHER_HOME, DATABASE_URL)."""
    workspace = Workspace.from_env()
    if not workspace.config_dir.is_dir():
        raise UserError(f"{workspace.home}: no working folder here; run `publisher init` first")
    try:
        config = workspace.load_config()
    except ConfigError as error:
        raise UserError(error.problems) from None
    engine = workspace.engine()
    return Context(workspace, config, engine, SqlRepository(engine))


def acting_identity(context: Context, as_user: str | None) -> Identity:
    try:
        return resolve_identity(
            current_os_user(), as_user, context.repository, sandbox_enabled(dict(os.environ))
        )
    except IdentityRefused as error:
        raise UserError(str(error)) from None


def acting_user(context: Context, as_user: str | None) -> str:
    return acting_identity(context, as_user).user.username


def anchor_path(context: Context) -> Path:
    return context.workspace.home / audit.ANCHOR_FILE_NAME


def read_anchor(context: Context) -> audit.Anchor | None:
    try:
        return audit.read_anchor(anchor_path(context))
    except audit.AnchorError as error:
        raise UserError(str(error)) from None


def describe_failure(verdict: audit.Verdict) -> str:
    return (
        f"audit chain broken at event {verdict.first_bad_seq}: {verdict.reason} "
        f"({verdict.checked} events before it are intact)"
    )


def move_anchor(context: Context) -> audit.Verdict:
    """Anchor the chain's head in the working folder (refused over a broken chain)."""
    try:
        return audit.anchor_database(context.engine, anchor_path(context), datetime.now(UTC))
    except (audit.AnchorError, OSError) as error:
        raise UserError(f"{anchor_path(context)}: cannot write the audit anchor: {error}") from None


def parse_time(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a time like 2026-11-24T08:00+07:00") from None
    if value.tzinfo is None:
        raise UserError(f"{option}: {text!r} needs a UTC offset, e.g. 2026-11-24T08:00+07:00")
    return value


def pause_target(
    unit: str | None, subtree: bool, channel: str | None, account: str | None, everything: bool
) -> tuple[PauseScope, str]:
    chosen = [x for x in (unit, channel, account) if x] + (["all"] if everything else [])
    if len(chosen) != 1:
        raise UserError("give exactly one of --unit CODE, --channel NAME, --account ID or --all")
    if subtree and not unit:
        raise UserError("--subtree goes with --unit CODE")
    if unit:
        return (PauseScope.SUBTREE if subtree else PauseScope.UNIT), unit
    if channel:
        from publisher.domain import Platform

        if channel not in {p.value for p in Platform}:
            known = ", ".join(p.value for p in Platform)
            raise UserError(f"--channel: unknown channel {channel!r} (known: {known})")
        return PauseScope.CHANNEL, channel
    if account:
        return PauseScope.ACCOUNT, account
    return PauseScope.ALL, ""


def _service_call(func, *args: object, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
    try:
        return func(*args, **kwargs)
    except ServiceError as error:
        raise UserError(str(error)) from None


def run_worker(context: Context, owner: str, until_idle: bool) -> dict[str, object]:
    from publisher.delivery import faults
    from publisher.delivery.worker import WorkerConfig
    from publisher.runtime import build_runtime

    async def main() -> dict[str, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        runtime = build_runtime(context.workspace)
        try:
            worker = runtime.worker(WorkerConfig(owner=owner), fault=faults.from_env())
            stats = await worker.run(until_idle=until_idle, stop=stop)
        finally:
            await runtime.aclose()
        return {"worker": owner, "claimed": stats.claimed, "outcomes": stats.outcomes}

    return asyncio.run(main())


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        until_idle: bool = typer.Option(
            False, "--until-idle", help="Exit when nothing is due or in flight."
        ),
        worker_id: str | None = typer.Option(None, "--id", help="Worker name (default: host-pid)."),
    ) -> None:
        """Run the delivery worker (several may share one PostgreSQL database)."""
        context = open_context()
        owner = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        summary = run_worker(context, owner, until_idle)
        anchored = move_anchor(context)
        summary["audit_anchor"] = anchored.anchored_seq if anchored.ok else None
        typer.echo(json.dumps(summary, ensure_ascii=False))
        if not anchored.ok:
            # The deliveries are done and stay done; the broken chain is an alarm to raise
            # loudly, not a reason to report the run itself as failed.
            typer.echo(f"WARNING audit anchor not moved: {describe_failure(anchored)}", err=True)

    @app.command("approve")
    def approve(
        posts: list[int] = typer.Argument(None, help="Post ids."),
        all_pending: bool = typer.Option(
            False, "--all-pending", help="Everything waiting that USER may approve."
        ),
        unit: str | None = typer.Option(None, "--unit"),
        as_user: str | None = typer.Option(None, "--as", help="Acting user."),
    ) -> None:
        """Approve posts."""
        context = open_context()
        service = context.service()
        identity = acting_identity(context, as_user)
        username = identity.user.username
        if all_pending == bool(posts):
            raise UserError("give post ids, or --all-pending (not both)")
        if unit and not all_pending:
            raise UserError("--unit goes with --all-pending")
        chosen: Sequence[int] = posts or _service_call(service.pending_for, username, unit)  # type: ignore[assignment]
        done = _service_call(
            service.approve, list(chosen), username, actor_label=identity.actor_label
        )
        typer.echo(f"approved {len(chosen)} post(s); {len(done)} now fully approved")  # type: ignore[arg-type]

    @app.command("reject")
    def reject(
        posts: list[int] = typer.Argument(..., help="Post ids."),
        reason: str = typer.Option(..., "--reason"),
        as_user: str | None = typer.Option(None, "--as", help="Acting user."),
    ) -> None:
        """Reject posts with a reason."""
        context = open_context()
        identity = acting_identity(context, as_user)
        _service_call(
            context.service().reject,
            posts,
            identity.user.username,
            reason,
            actor_label=identity.actor_label,
        )
        typer.echo(f"rejected {len(posts)} post(s)")

    @app.command("schedule")
    def schedule(
        posts: list[int] = typer.Argument(..., help="Post ids."),
        at: str = typer.Option(..., "--at", help="Time, e.g. 2026-11-24T08:00+07:00"),
        as_user: str | None = typer.Option(None, "--as", help="Acting user."),
    ) -> None:
        """Set or change when posts go out."""
        when = parse_time(at, "--at")
        context = open_context()
        identity = acting_identity(context, as_user)
        _service_call(
            context.service().reschedule,
            posts,
            identity.user.username,
            when,
            actor_label=identity.actor_label,
        )
        typer.echo(f"scheduled {len(posts)} post(s) at {when.isoformat()}")

    @app.command("pause")
    def pause(
        unit: str | None = typer.Option(None, "--unit"),
        subtree: bool = typer.Option(False, "--subtree"),
        channel: str | None = typer.Option(None, "--channel"),
        account: str | None = typer.Option(None, "--account"),
        everything: bool = typer.Option(False, "--all"),
        reason: str = typer.Option(..., "--reason"),
        until: str | None = typer.Option(None, "--until"),
        as_user: str | None = typer.Option(None, "--as"),
    ) -> None:
        """Emergency stop for a unit, a subtree, a channel, an account or everything."""
        scope, target = pause_target(unit, subtree, channel, account, everything)
        resume_at = parse_time(until, "--until") if until else None
        context = open_context()
        service = context.service()
        identity = acting_identity(context, as_user)
        pause_id = _service_call(
            service.pause,
            scope,
            target,
            reason,
            identity.user.username,
            resume_at,
            actor_label=identity.actor_label,
        )
        typer.echo(f"paused {scope.value} {target or '(everything)'} (pause {pause_id})")

    @app.command("resume")
    def resume(
        unit: str | None = typer.Option(None, "--unit"),
        subtree: bool = typer.Option(False, "--subtree"),
        channel: str | None = typer.Option(None, "--channel"),
        account: str | None = typer.Option(None, "--account"),
        everything: bool = typer.Option(False, "--all"),
        reason: str = typer.Option(..., "--reason"),
        as_user: str | None = typer.Option(None, "--as"),
    ) -> None:
        """Lift a pause."""
        scope, target = pause_target(unit, subtree, channel, account, everything)
        context = open_context()
        identity = acting_identity(context, as_user)
        lifted = _service_call(
            context.service().resume,
            scope,
            target,
            reason,
            identity.user.username,
            actor_label=identity.actor_label,
        )
        typer.echo(f"lifted {lifted} pause(s) on {scope.value} {target or '(everything)'}")

    @app.command("recall")
    def recall(
        post: int | None = typer.Argument(None, help="Post id (one unit's post)."),
        article: int | None = typer.Option(
            None, "--article", help="Article id: recall it from every unit it went to."
        ),
        reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
        notice: str = typer.Option(
            "",
            "--notice",
            help="Correction text written in place of the post where the platform can only edit.",
        ),
        as_user: str | None = typer.Option(None, "--as", help="Acting user."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Thu hồi · take a post (or an article everywhere) back from every channel: what has
        not gone out is stopped, what has is withdrawn by the workers; what a platform cannot
        remove is listed for a person (`publisher report recall`)."""
        if (post is None) == (article is None):
            raise UserError("give a POST_ID, or --article ID (not both)")
        if not reason.strip():
            raise UserError("--reason: must not be empty")
        context = open_context()
        identity = acting_identity(context, as_user)
        result = _service_call(
            context.service().recall,
            identity.user.username,
            reason=reason,
            post_id=post,
            article_id=article,
            notice=notice,
            actor_label=identity.actor_label,
        )
        assert isinstance(result, RecallResult)
        if as_json:
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
            return
        typer.echo(
            f"recall {result.recall_id}: {len(result.posts)} post(s) recalled; "
            f"{result.cancelled} delivery(ies) stopped before sending; "
            f"{result.to_withdraw} to withdraw (the workers take them back; "
            f"see `publisher report recall --recall {result.recall_id}`)"
        )

    @audit_app.command("verify")
    def verify() -> None:
        """Check the audit hash chain against the anchor in the working folder; name the first
        bad event, or the events cut off after the anchor."""
        context = open_context()
        anchor = read_anchor(context)
        verdict = audit.verify_database(context.engine, anchor)
        if verdict.ok:
            where = (
                f"anchored at event {anchor.seq}"
                if anchor is not None
                else "no anchor: cut-off newest events cannot be seen; run `publisher audit anchor`"
            )
            kind = "keyed" if verdict.keyed else "unkeyed"
            typer.echo(f"audit chain ok: {verdict.checked} events ({kind}; {where})")
            return
        typer.echo(describe_failure(verdict), err=True)
        raise typer.Exit(1)

    @audit_app.command("anchor")
    def anchor() -> None:
        """Record the chain's head outside the database (<PUBLISHER_HOME>/audit-head.json),
        after checking the chain against the previous anchor."""
        context = open_context()
        verdict = move_anchor(context)
        if not verdict.ok:
            typer.echo(f"audit anchor not moved: {describe_failure(verdict)}", err=True)
            raise typer.Exit(1)
        typer.echo(
            f"audit anchor at event {verdict.anchored_seq} ({verdict.checked} events checked): "
            f"{anchor_path(context)}"
        )

    app.add_typer(audit_app, name="audit")
