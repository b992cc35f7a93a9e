"""`publisher ingest` (issue 3): a file or URL → normalised articles, printed or stored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import typer

from publisher.cli.common import UserError
from publisher.domain import Article, ArticleKind
from publisher.fetch import FetchError, FetchPolicy, fetch
from publisher.ingest.errors import IngestError
from publisher.ingest.normalize import SourceContext
from publisher.ingest.pipeline import RecordReport, record_articles
from publisher.ingest.reader import read_document

MAX_FILE_BYTES = 50 * 1024 * 1024

if TYPE_CHECKING:
    from publisher.service import DeliveryService


def _load(source: str, allow_private: bool) -> tuple[bytes, str, str, str | None]:
    """(bytes, base URL, display name, HTTP charset) of a path or an http(s) URL."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        policy = FetchPolicy(allow_private_network=allow_private, max_bytes=MAX_FILE_BYTES)
        try:
            result = asyncio.run(fetch(source, policy))
        except FetchError as error:
            raise UserError(f"{source}: {error}") from error
        charset = None
        for part in result.content_type.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset":
                charset = value.strip("\"' ")
        return result.content, result.url, urlsplit(result.url).hostname or source, charset
    if scheme and len(scheme) > 1:
        raise UserError(f"{source}: only files and http(s) URLs can be ingested")
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UserError(f"{source}: {size} bytes, more than the {MAX_FILE_BYTES} byte limit")
        return path.read_bytes(), "", "", None
    except FileNotFoundError as error:
        raise UserError(f"{source}: no such file") from error
    except IsADirectoryError as error:
        raise UserError(f"{source}: is a directory, not a file") from error
    except OSError as error:
        raise UserError(f"{source}: cannot read: {error.strerror}") from error


def _store(
    articles: list[Article], *, source_id: str, kind: ArticleKind, unit: str | None
) -> RecordReport:
    from publisher.store.ingest_sql import SqlIngestStore
    from publisher.workspace import Workspace

    workspace = Workspace.from_env()
    workspace.upgrade_database()
    repository = workspace.repository()
    if unit is not None and repository.get_unit(unit) is None:
        raise UserError(f"--unit {unit}: no such unit in the database (run `publisher init`?)")
    if unit is None and kind is ArticleKind.DIRECTIVE:
        roots = [u.code for u in repository.list_units() if u.parent_code is None]
        if not roots:
            raise UserError("--kind directive: no root unit in the database (run `publisher init`)")
        unit = roots[0]
    from dataclasses import replace

    owned = [replace(a, unit_code=unit) for a in articles]
    store = SqlIngestStore(workspace.engine())
    return record_articles(
        store, owned, source_id=source_id, backlog=False, seen_at=datetime.now(UTC)
    )


def _router() -> DeliveryService:
    """The service that routes stored articles; checked before anything is stored, so a
    working folder without valid configuration stores nothing."""
    from publisher.runtime import delivery_service
    from publisher.settings import ConfigError
    from publisher.workspace import Workspace

    workspace = Workspace.from_env()
    if not workspace.config_dir.is_dir():
        raise UserError(f"{workspace.home}: no working folder here; run `publisher init` first")
    try:
        config = workspace.load_config()
    except ConfigError as error:
        raise UserError(error.problems) from None
    return delivery_service(workspace, config)


def _route(service: DeliveryService, article_ids: list[int]) -> tuple[int, int]:
    """Fan the new articles out to their units (posts and deliveries, one transaction each)."""
    posts = deliveries = 0
    for article_id in article_ids:
        created_posts, created_deliveries = service.route_article(article_id)
        posts += created_posts
        deliveries += created_deliveries
    return posts, deliveries


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        source: str = typer.Argument(
            ..., help="Path or URL: RSS/Atom/JSON Feed, HTML page, or article JSON."
        ),
        unit: str | None = typer.Option(
            None, "--unit", help="Owning unit code (directives default to the root)."
        ),
        kind: str = typer.Option("article", "--kind", help="directive | article"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Parse and print; write nothing."),
        as_json: bool = typer.Option(
            False, "--json", help="Print a JSON array of normalised articles."
        ),
        timezone: str = typer.Option(
            "+07:00", "--timezone", help="Zone for dates written without one."
        ),
        allow_private: bool = typer.Option(
            False, "--allow-private-network", help="Let a URL reach 127.0.0.1 (sandbox only)."
        ),
    ) -> None:
        """Read articles from a feed, page or article JSON; store and route them."""
        try:
            article_kind = ArticleKind(kind)
        except ValueError as error:
            raise UserError(f"--kind {kind}: must be 'directive' or 'article'") from error
        data, base_url, name, charset = _load(source, allow_private)
        source_id = f"url:{base_url}" if base_url else f"file:{Path(source).name}"
        context = SourceContext(
            id=source_id,
            name=name,
            unit_code=unit,
            kind=article_kind,
            timezone=timezone,
            base_url=base_url,
        )
        try:
            articles, problems = read_document(
                data, context, now=datetime.now(UTC), http_charset=charset
            )
        except IngestError as error:
            raise UserError(f"{source}: {error}") from error
        for problem in problems:
            typer.echo(f"{source}: {problem}", err=True)
        if dry_run:
            if as_json:
                typer.echo(
                    json.dumps([a.to_json() for a in articles], ensure_ascii=False, indent=2)
                )
            else:
                for article in articles:
                    when = article.published_at.strftime("%d/%m/%Y %H:%M")
                    typer.echo(f"{when}  {article.title}  {article.url}")
                typer.echo(f"{len(articles)} article(s), nothing written (--dry-run)")
            return
        router = _router()
        report = _store(articles, source_id=source_id, kind=article_kind, unit=unit)
        posts, deliveries = _route(router, report.new_ids)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "new": report.new_ids,
                        "linked": report.linked_ids,
                        "duplicates": report.duplicates,
                        "posts": posts,
                        "deliveries": deliveries,
                    }
                )
            )
        else:
            typer.echo(
                f"{report.new} new article(s), {len(report.linked_ids)} known from another "
                f"source, {report.duplicates} already stored; routed to {posts} post(s), "
                f"{deliveries} delivery(ies)"
            )
