"""The `publisher` command (docs/cli.md). Each area registers its commands from its own module.

Exit codes: 0 success, 1 a runtime failure, 2 bad input or configuration, with one clear
line per problem on stderr and no traceback unless `--debug` is given.
"""

from __future__ import annotations

import sys

import typer

from publisher import redact
from publisher.cli import (
    accounts_cmd,
    archive_cmd,
    channels_cmd,
    delivery_cmd,
    ingest_cmd,
    reports_cmd,
    run_cmd,
    security_cmd,
    setup_cmd,
    tui_cmd,
    units_cmd,
)
from publisher.cli.common import DEBUG, UserError, print_problems

app = typer.Typer(
    name="publisher",
    help=(
        "Đăng tin đa kênh cho mạng Cổng TTĐT · Multi-channel publisher for Vietnam's "
        "government portal network."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    DEBUG.enabled = debug
    redact.install()  # every log record of every command is scrubbed of secrets


for module in (
    setup_cmd,
    ingest_cmd,
    channels_cmd,
    delivery_cmd,
    run_cmd,
    tui_cmd,
    reports_cmd,
    security_cmd,
    accounts_cmd,
    units_cmd,
    archive_cmd,
):
    module.register(app)


def main() -> None:
    """Entry point: turn known errors into exit codes and one line each, never a traceback."""
    try:
        # Without standalone mode click returns a `typer.Exit` code instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except UserError as error:
        print_problems(redact.redact(line) for line in error.problems)
        sys.exit(2)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except Exception as error:  # the last line of defence: one line, exit 1
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(2)
        # typer ≥ 0.20 raises its own copy of click's usage errors (bad value, unknown option).
        show = getattr(error, "show", None)
        if isinstance(error, typer.exceptions.TyperException) and callable(show):
            show()
            sys.exit(2)
        if DEBUG.enabled:
            raise
        print(redact.redact(f"error: {type(error).__name__}: {error}"), file=sys.stderr)
        sys.exit(1)
