"""The demo's bundled portals: a central directives page, two feeds and one pushed article.

Files in `data/` are templates; dates are filled in relative to the moment the demo runs, so
the demo never ages into expiry. The portal has two phases: first only the older items are
listed (a source's first poll is its backlog: recorded, never published), then the new ones
appear, as they would on a real portal between two polls.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from publisher.domain import VIETNAM_TZ

DATA = Path(__file__).parent / "data"
# Item numbers listed from the first poll (the backlog); the others appear afterwards.
BACKLOG_ITEMS = {3, 5, 7}
FILES = {
    "chi-dao.html": ("cp-chi-dao.html", "text/html; charset=utf-8"),
    "home.rss": ("cp-tin-noi-bat.rss", "application/rss+xml; charset=utf-8"),
    "hanoi.rss": ("hanoi-tin-tuc.rss", "application/rss+xml; charset=utf-8"),
}
ITEM_BLOCK = re.compile(
    r'(<item>.*?</item>|<div class="box-stream-item">.*?</div>\s*(?=<div class="box|</div>))',
    re.DOTALL,
)
ITEM_NUMBER = re.compile(r"\{\{(?:id|date|rss_date)(\d)\}\}")


def _rss_date(moment: datetime) -> str:
    """baochinhphu.vn's style: month/day/year, 12-hour clock, and no time zone."""
    local = moment.astimezone(VIETNAM_TZ)
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return f"{local.month}/{local.day}/{local.year} {hour}:{local:%M:%S} {half}"


@dataclass
class DemoPortal:
    """Renders the sample files for one demo run (`now` fixes every date and id)."""

    now: datetime
    phase: str = "backlog"  # then "fresh"
    values: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Item n was published n×40 minutes ago (backlog items are the oldest).
        ages = {1: 35, 2: 20, 3: 600, 4: 50, 5: 660, 6: 25, 7: 720, 8: 10}
        stamp = self.now.astimezone(VIETNAM_TZ).strftime("%y%m%d%H%M")
        for n, minutes in ages.items():
            moment = self.now - timedelta(minutes=minutes)
            self.values[f"id{n}"] = f"{stamp}{n:02d}"
            self.values[f"date{n}"] = moment.astimezone(VIETNAM_TZ).strftime("%d/%m/%Y %H:%M")
            self.values[f"rss_date{n}"] = _rss_date(moment)
            self.values[f"iso_date{n}"] = moment.astimezone(VIETNAM_TZ).isoformat()

    def render(self, template: str) -> str:
        if self.phase == "backlog":

            def keep(match: re.Match[str]) -> str:
                numbers = {int(n) for n in ITEM_NUMBER.findall(match.group(0))}
                return match.group(0) if numbers & BACKLOG_ITEMS else ""

            template = ITEM_BLOCK.sub(keep, template)
        for key, value in self.values.items():
            template = template.replace("{{" + key + "}}", value)
        return template

    def file(self, name: str) -> str:
        return self.render((DATA / name).read_text(encoding="utf-8"))

    def pushed_article(self) -> bytes:
        return self.render((DATA / "push-hcm.json").read_text(encoding="utf-8")).encode()

    def article_page(self, name: str) -> str | None:
        """The article page a listing links to (…-102<id>.htm), as the portal would show it."""
        pages = json.loads((DATA / "directive-pages.json").read_text(encoding="utf-8"))
        for number, page in pages.items():
            if name.endswith(f"102{self.values['id' + number]}.htm"):
                image = page.get("image")
                meta = f'<meta property="og:image" content="{image}">' if image else ""
                body = "".join(f"<p>{html.escape(p)}</p>" for p in page["body"])
                return (
                    f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">{meta}'
                    f"<title>{html.escape(page['title'])}</title></head><body>"
                    f'<h1 class="detail-title">{html.escape(page["title"])}</h1>'
                    f'<div class="detail-time">{self.values["date" + number]}</div>'
                    f'<h2 class="detail-sapo">{html.escape(page["lead"])}</h2>'
                    f'<div class="detail-content">{body}</div></body></html>'
                )
        return None

    def app(self) -> Starlette:
        async def serve(request: Request) -> Response:
            name = request.path_params["name"]
            if name.endswith(".htm"):
                page = self.article_page(name)
                if page is None:
                    return Response("not found", status_code=404)
                return Response(page, media_type="text/html; charset=utf-8")
            if name not in FILES:
                return Response("not found", status_code=404)
            template, media_type = FILES[name]
            return Response(self.file(template), media_type=media_type)

        return Starlette(routes=[Route("/{name}", serve)])
