"""The article JSON of the public interface (docs/cli.md) → `Article`, with clear problems."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from publisher.domain import Article, ArticleKind
from publisher.text import nfc


class ArticleJsonError(ValueError):
    """One line per problem, each naming the file and the field."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


_REQUIRED = ("guid", "url", "title", "published_at")


def article_from_json(data: Any, where: str) -> Article:
    """An `Article` from article JSON; `ArticleJsonError` names each bad field."""
    if not isinstance(data, dict):
        raise ArticleJsonError(f"{where}: must be a JSON object (the article JSON format)")
    problems = [f"{where}: {key}: missing" for key in _REQUIRED if not data.get(key)]
    for key in ("guid", "url", "title", "summary", "body_html", "body_text", "language", "source"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            problems.append(f"{where}: {key}: must be a string")
    images = data.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        problems.append(f"{where}: images: must be a list of URLs")
    video = data.get("video")
    if video is not None and not isinstance(video, str):
        problems.append(f"{where}: video: must be a URL or null")
    kind = data.get("kind", "article")
    if kind not in {k.value for k in ArticleKind}:
        problems.append(f"{where}: kind: must be 'directive' or 'article', not {kind!r}")
    published: datetime | None = None
    if isinstance(data.get("published_at"), str):
        try:
            published = datetime.fromisoformat(data["published_at"])
        except ValueError:
            problems.append(f"{where}: published_at: not an ISO 8601 date-time")
        else:
            if published.tzinfo is None:
                problems.append(f"{where}: published_at: must carry a UTC offset")
    if problems or published is None:
        raise ArticleJsonError(problems or [f"{where}: published_at: missing"])

    def text(key: str) -> str:
        return nfc(str(data.get(key) or ""))

    return Article(
        guid=text("guid"),
        url=text("url"),
        title=text("title"),
        published_at=published,
        summary=text("summary"),
        body_html=text("body_html"),
        body_text=text("body_text"),
        images=tuple(nfc(i) for i in images),
        video=nfc(video) if video else None,
        language=text("language") or "vi",
        source=text("source"),
        kind=ArticleKind(kind),
    )
