"""Shared adaptation: clean article text and compose a post that fits a platform's limit.

Pure functions. A post is a list of blocks (lead-in, title, body, link, source line,
hashtags); the body is shortened first, at a sentence or word boundary, then hashtags are
dropped, then the title is shortened, so the result always fits `limit` as `measure` counts.
Central directives are locked: only the unit's lead-in differs between units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from channels.base import Problem, Severity, Template
from publisher.domain import Article, ArticleKind
from publisher.text import hashtag, nfc, truncate_sentences, truncate_words

Measure = Callable[[str], int]
BlockKind = Literal["lead_in", "title", "body", "link", "source", "hashtags"]

# Anything that looks like markup: a tag, a comment, a processing instruction.
_TAG_RE = re.compile(r"<(?:[A-Za-z/!?][^<>]*)>")
_TAG_OPEN_RE = re.compile(r"<(?=[A-Za-z/!?])")
# Control, zero-width-space and bidi-override characters (they break parsers or hide text);
# the joiners U+200C/U+200D stay: emoji sequences and some scripts need them.
_CONTROL_RE = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def clean_text(text: str) -> str:
    """NFC, no markup, no control or bidi characters, tidy white space, paragraphs kept."""
    # control characters go first: removing them must not join text into a tag
    # (a control character that is white space, like U+000B, still separates words)
    text = _CONTROL_RE.sub(lambda m: " " if m.group(0).isspace() else "", nfc(text))
    text = text.replace("\t", " ")
    # Repeat until nothing changes: removing an inner tag can join the pieces of an outer one
    # (`<iframe srcdoc="<script>x</script>">` becomes `<iframe srcdoc=" x ">` after one pass).
    while True:
        stripped = _TAG_RE.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    # a "<" left before a letter could pair with a ">" in a later block: keep it from ever
    # opening a tag ("a<b" → "a< b"); Telegram escapes it anyway, other platforms show text
    text = _TAG_OPEN_RE.sub("< ", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    return "\n\n".join(p for p in paragraphs if p)


def clean_line(text: str) -> str:
    """`clean_text` folded to one line."""
    return " ".join(clean_text(text).split())


def effective_template(article: Article, template: Template) -> tuple[Template, list[Problem]]:
    """A directive's official text is locked: a unit may add only its own lead-in.

    Every other customisation is reset to the default (with an info problem saying so), so the
    official block is identical for every unit on a channel.
    """
    if article.kind is not ArticleKind.DIRECTIVE:
        return template, []
    locked = Template(lead_in=template.lead_in)
    if template == locked:
        return template, []
    return locked, [
        Problem(
            Severity.INFO,
            "directive_locked",
            "Văn bản chỉ đạo giữ nguyên: chỉ dùng lời dẫn của đơn vị, bỏ qua tuỳ chỉnh khác "
            "(directive text is locked; only the unit's lead-in applies)",
        )
    ]


def source_line(article: Article, template: Template) -> str:
    """The configured source line with `{source}` filled in (no other formatting applied)."""
    if not template.source_line:
        return ""
    source = article.source or _host(article.url)
    if "{source}" in template.source_line and not source:
        return ""
    return clean_line(template.source_line.replace("{source}", source))


def hashtags_line(template: Template) -> str:
    tags: list[str] = []
    for keyword in template.hashtag_keywords:
        tag = hashtag(keyword)
        if tag and tag not in tags:
            tags.append(tag)
    return " ".join(tags)


def _host(url: str) -> str:
    match = re.match(r"https?://(?:www\.)?([^/:?#]+)", url)
    return match.group(1) if match else ""


def article_body(article: Article, *, full: bool) -> str:
    """The text to shorten: the summary (lead), and with `full` the body after it."""
    summary = clean_text(article.summary)
    body = clean_text(article.body_text)
    if not full:
        return summary or body
    if summary and body.startswith(summary):
        return body
    return "\n\n".join(part for part in (summary, body) if part)


@dataclass(frozen=True, slots=True)
class Composed:
    blocks: tuple[tuple[BlockKind, str], ...]
    problems: tuple[Problem, ...]
    separator: str

    @property
    def text(self) -> str:
        return self.separator.join(text for _, text in self.blocks)

    def get(self, kind: BlockKind) -> str:
        return next((text for k, text in self.blocks if k == kind), "")


def compose(
    article: Article,
    template: Template,
    *,
    limit: int,
    measure: Measure,
    full_body: bool = False,
    with_body: bool = True,
    separator: str = "\n\n",
    link_label: str = "",
) -> Composed:
    """Blocks of a post that fits `limit`. The caller passes the effective template."""
    problems: list[Problem] = []
    lead_in = clean_line(template.lead_in)
    title = clean_line(article.title)
    body = article_body(article, full=full_body) if (with_body and template.include_summary) else ""
    link = (link_label + article.url) if (template.include_link and article.url) else ""
    blocks: dict[BlockKind, str] = {
        "lead_in": lead_in,
        "title": title,
        "body": body,
        "link": link,
        "source": source_line(article, template),
        "hashtags": hashtags_line(template),
    }
    order: tuple[BlockKind, ...] = ("lead_in", "title", "body", "link", "source", "hashtags")

    def join(parts: dict[BlockKind, str]) -> str:
        return separator.join(parts[k] for k in order if parts[k])

    def others_cost(skip: BlockKind) -> int:
        rest = {k: (v if k != skip else "") for k, v in blocks.items()}
        joined = join(rest)
        return measure(joined) + (measure(separator) if joined else 0)

    if measure(join(blocks)) > limit and blocks["body"]:
        budget = limit - others_cost("body")
        shortened = truncate_sentences(blocks["body"], budget, measure) if budget > 0 else ""
        blocks["body"] = shortened
        problems.append(
            Problem(
                Severity.WARNING,
                "truncated",
                f"Nội dung được rút gọn cho vừa giới hạn {limit} (body shortened to fit {limit})",
            )
        )
    if measure(join(blocks)) > limit and blocks["hashtags"]:
        blocks["hashtags"] = ""
        problems.append(
            Problem(
                Severity.WARNING, "hashtags_dropped", "Bỏ hashtag vì quá dài (hashtags dropped)"
            )
        )
    for kind in ("title", "lead_in", "source"):
        if measure(join(blocks)) > limit and blocks[kind]:
            budget = limit - others_cost(kind)
            blocks[kind] = truncate_words(blocks[kind], budget, measure) if budget > 0 else ""
            problems.append(
                Problem(
                    Severity.WARNING,
                    f"{kind}_truncated",
                    f"Phần {kind} được rút gọn (the {kind} was shortened to fit {limit})",
                )
            )
    if measure(join(blocks)) > limit:
        problems.append(
            Problem(Severity.ERROR, "too_long", f"Không thể làm vừa giới hạn {limit} (cannot fit)")
        )
    if not blocks["title"] and not blocks["body"]:
        problems.append(Problem(Severity.ERROR, "empty", "Bài viết không có nội dung (no text)"))
    return Composed(
        blocks=tuple((k, blocks[k]) for k in order if blocks[k]),
        problems=tuple(problems),
        separator=separator,
    )
