"""Article JSON (docs/cli.md) in: a strict schema, then the same normalisation as feeds.

Used by `publisher ingest FILE.json` and by the push intake API. Unknown fields are refused
(extra=forbid) so a typo in a CMS integration is an error, not silently lost data.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from publisher.domain import Article, ArticleKind
from publisher.ingest.dates import zone_of
from publisher.ingest.errors import IngestError
from publisher.ingest.normalize import SourceContext, content_hash, strip_lead_tag
from publisher.ingest.sanitize import clean_html, html_to_text, plain_text
from publisher.ingest.urls import absolute_url, canonical_url, scoped_guid
from publisher.text import nfc


def _http_url(value: str) -> str:
    value = value.strip()
    if not absolute_url(value, None):
        raise ValueError("must be an absolute http(s) URL")
    return value


HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    guid: str = Field(min_length=1, max_length=512)
    url: HttpUrl
    title: str = Field(min_length=1, max_length=1000)
    summary: str = Field(default="", max_length=10_000)
    body_html: str = Field(default="", max_length=2_000_000)
    body_text: str = Field(default="", max_length=1_000_000)
    published_at: datetime
    images: list[HttpUrl] = Field(default_factory=list, max_length=50)
    video: HttpUrl | None = None
    language: str = Field(default="vi", min_length=2, max_length=8)
    source: str = Field(default="", max_length=200)
    kind: Literal["directive", "article"] = "article"
    category: str | None = Field(default=None, max_length=200)
    urgent: bool = False

    @field_validator("title", "summary", "body_text", "source")
    @classmethod
    def _nfc(cls, value: str) -> str:
        return nfc(value)


def to_article(model: ArticleIn, context: SourceContext) -> Article:
    """Validated input → the normalised Article (sanitised HTML, NFC, offset-carrying date)."""
    published = model.published_at
    if published.tzinfo is None:  # no offset given: the source's zone
        published = published.replace(tzinfo=zone_of(context.timezone))
    body_html = clean_html(model.body_html, base_url=model.url)
    body_text = html_to_text(body_html) if body_html else nfc(model.body_text)
    title = plain_text(model.title)
    return Article(
        guid=scoped_guid(model.guid, context.id),
        url=canonical_url(model.url),
        title=title,
        published_at=published,
        summary=strip_lead_tag(plain_text(model.summary)),
        body_html=body_html,
        body_text=body_text,
        images=tuple(dict.fromkeys(model.images)),
        video=model.video,
        language=model.language,
        source=model.source or context.name,
        kind=ArticleKind(model.kind),
        unit_code=context.unit_code,
        category=model.category or context.category,
        urgent=model.urgent,
        content_hash=content_hash(title, body_text),
    )


def describe_validation_error(error: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as [{"field": "images.2", "message": "..."}]."""
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(body)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append({"field": where, "message": message})
    return problems


def parse_article_documents(data: bytes, context: SourceContext) -> list[Article]:
    """An article JSON object or an array of them → Articles; IngestError names the field."""
    try:
        document: Any = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise IngestError(f"article JSON is not UTF-8: {error}") from error
    except json.JSONDecodeError as error:
        raise IngestError(f"not valid JSON: {error.msg} (line {error.lineno})") from error
    documents = document if isinstance(document, list) else [document]
    articles = []
    for position, entry in enumerate(documents):
        try:
            model = ArticleIn.model_validate(entry)
        except ValidationError as error:
            where = f"article {position}: " if isinstance(document, list) else ""
            first = describe_validation_error(error)
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in first)
            raise IngestError(f"{where}{detail}") from error
        articles.append(to_article(model, context))
    return articles
