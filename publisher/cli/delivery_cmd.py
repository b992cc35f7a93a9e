"""Worker, decisions, pause/resume and audit commands (issue 4)."""

from __future__ import annotations

import typer

from publisher.cli.common import not_built_yet

audit_app = typer.Typer(help="The audit trail (hash chain).")


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        until_idle: bool = typer.Option(False, "--until-idle", help="Exit when nothing is due or in flight."),
        worker_id: str | None = typer.Option(None, "--id", help="Worker name (default: host-pid)."),
    ) -> None:
        """Run the delivery worker."""
        del until_idle, worker_id
        not_built_yet("worker", 4)

    @app.command("approve")
    def approve(
        posts: list[int] = typer.Argument(None, help="Post ids."),
        all_pending: bool = typer.Option(False, "--all-pending", help="Everything waiting that USER may approve."),
        unit: str | None = typer.Option(None, "--unit"),
        as_user: str = typer.Option(..., "--as", help="Acting user."),
    ) -> None:
        """Approve posts."""
        del posts, all_pending, unit, as_user
        not_built_yet("approve", 4)

    @app.command("reject")
    def reject(
        posts: list[int] = typer.Argument(..., help="Post ids."),
        reason: str = typer.Option(..., "--reason"),
        as_user: str = typer.Option(..., "--as", help="Acting user."),
    ) -> None:
        """Reject posts with a reason."""
        del posts, reason, as_user
        not_built_yet("reject", 4)

    @app.command("schedule")
    def schedule(
        posts: list[int] = typer.Argument(..., help="Post ids."),
        at: str = typer.Option(..., "--at", help="Time, e.g. 2026-11-24T08:00+07:00"),
        as_user: str = typer.Option(..., "--as", help="Acting user."),
    ) -> None:
        """Set or change when posts go out."""
        del posts, at, as_user
        not_built_yet("schedule", 4)

    @app.command("pause")
    def pause(
        unit: str | None = typer.Option(None, "--unit"),
        subtree: bool = typer.Option(False, "--subtree"),
        channel: str | None = typer.Option(None, "--channel"),
        everything: bool = typer.Option(False, "--all"),
        reason: str = typer.Option(..., "--reason"),
        until: str | None = typer.Option(None, "--until"),
        as_user: str | None = typer.Option(None, "--as"),
    ) -> None:
        """Emergency stop for a unit, a subtree, a channel or everything."""
        del unit, subtree, channel, everything, reason, until, as_user
        not_built_yet("pause", 4)

    @app.command("resume")
    def resume(
        unit: str | None = typer.Option(None, "--unit"),
        subtree: bool = typer.Option(False, "--subtree"),
        channel: str | None = typer.Option(None, "--channel"),
        everything: bool = typer.Option(False, "--all"),
        reason: str = typer.Option(..., "--reason"),
        as_user: str | None = typer.Option(None, "--as"),
    ) -> None:
        """Lift a pause."""
        del unit, subtree, channel, everything, reason, as_user
        not_built_yet("resume", 4)

    @audit_app.command("verify")
    def verify() -> None:
        """Check the audit hash chain; name the first bad event."""
        not_built_yet("audit verify", 4)

    app.add_typer(audit_app, name="audit")
