"""`publisher preview` and `publisher sandbox serve` (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from channels.article_json import ArticleJsonError, article_from_json
from publisher.cli.common import UserError
from publisher.domain import Article, Unit

sandbox_app = typer.Typer(help="The platform sandbox: emulators of every platform, with a ledger.")


def load_article(path: str) -> Article:
    file = Path(path)
    if not file.is_file():
        raise UserError(
            f"{path}: no such article file (stored article ids are not supported here yet)"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: line {error.lineno}: invalid JSON: {error.msg}") from None
    try:
        return article_from_json(data, path)
    except ArticleJsonError as error:
        raise UserError(error.problems) from None


def preview_json(article: Article, channel_name: str, unit_code: str | None) -> dict[str, Any]:
    """What `send` would use: `{"channel", "unit", "payload", "problems"}`."""
    import httpx

    from channels.base import Template
    from channels.registry import UnknownChannel, channel_class

    try:
        cls = channel_class(channel_name)
    except UnknownChannel as error:
        raise UserError(f"--channel: {error}") from None
    code = unit_code or "CP"
    unit = Unit(code=code, name=code, kind="unit")
    # adapt is pure; the client is never used (the channel contract wants one)
    channel = cls(httpx.AsyncClient())
    adapted = channel.adapt(article, unit, Template())
    return {
        "channel": channel_name,
        "unit": code,
        "payload": adapted.payload,
        "problems": [p.to_json() for p in adapted.problems],
    }


def register(app: typer.Typer) -> None:
    @app.command("preview")
    def preview(
        article: str = typer.Argument(..., help="An article JSON file or a stored article id."),
        channel: str = typer.Option(
            ..., "--channel", help="facebook, youtube, zalo, viber, telegram, x"
        ),
        unit: str | None = typer.Option(None, "--unit", help="Unit code whose template applies."),
        as_json: bool = typer.Option(False, "--json", help="Print the exact payload as JSON."),
    ) -> None:
        """Show exactly what would be sent to one channel."""
        result = preview_json(load_article(article), channel, unit)
        if as_json:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            return
        typer.echo(f"{result['channel']} · unit {result['unit']}")
        for problem in result["problems"]:
            typer.echo(f"  [{problem['severity']}] {problem['code']}: {problem['message']}")
        if result["payload"] is None:
            typer.echo("  (nothing would be sent)")
            return
        for key, value in result["payload"].items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            typer.echo(f"--- {key}\n{shown}")

    @sandbox_app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host"),
        port: int = typer.Option(8765, "--port"),
        faults: str | None = typer.Option(
            None, "--faults", help="Fault spec (JSON text or @file) set at start."
        ),
    ) -> None:
        """Serve every platform's emulator on one port, with a ledger and fault injection."""
        import uvicorn

        from channels.sandbox import make_app
        from channels.sandbox.core import FaultSpecError, parse_faults

        spec: Any = None
        if faults:
            raw = faults
            if faults.startswith("@"):
                try:
                    raw = Path(faults[1:]).read_text(encoding="utf-8")
                except OSError as error:
                    raise UserError(f"--faults: {faults[1:]}: {error.strerror}") from None
            try:
                spec = json.loads(raw)
                parse_faults(spec)
            except json.JSONDecodeError as error:
                raise UserError(f"--faults: invalid JSON: {error.msg}") from None
            except FaultSpecError as error:
                raise UserError(f"--faults: {error}") from None
        typer.echo(f"sandbox on http://{host}:{port}  (set PUBLISHER_SANDBOX_URL to use it)")
        uvicorn.run(make_app(fault_spec=spec), host=host, port=port, log_level="warning")

    app.add_typer(sandbox_app, name="sandbox")
