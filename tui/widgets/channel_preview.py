"""One channel's rendering of a post: text, link, image, hashtags, counter and problems."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text
from textual.widgets import Static

from channels.base import Severity
from tui import formatting
from tui.i18n import _
from tui.ports import ChannelPreview

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}


def album_lines(images: tuple[str, ...], shown: int) -> list[Text]:
    """An album as a row of boxes (the shown photo filled), its place, and its address."""
    boxes = " ".join("■" if i == shown else "□" for i in range(len(images)))
    place = f"{shown + 1}/{len(images)}"
    return [
        Text.assemble(
            (_("Album: "), "bold"),
            _("{n} photos").format(n=len(images)),
            "  ",
            (boxes, "cyan"),
            "  ",
            (place, "bold cyan"),
            ("  " + _("(, and . step through the photos)"), "dim"),
        ),
        Text.assemble((_("Image {place}: ").format(place=place), "bold"), images[shown]),
    ]


def render_preview(preview: ChannelPreview, state: str, shown: int = 0) -> RenderableType:
    """`shown`: which photo of an album is on screen (0 = the first)."""
    over = preview.limit is not None and preview.length > preview.limit
    counter = Text(
        f"{preview.length}/{preview.limit}" if preview.limit else str(preview.length),
        style="bold red" if over else "green",
    )
    head = Text.assemble(
        (formatting.platform(preview.platform), "bold"),
        f" · {preview.account_id} · ",
        formatting.delivery_state(state),
        "  ",
        _("characters: "),
        counter,
    )
    parts: list[RenderableType] = [head]
    body = Text(preview.text or _("(no text)"))
    parts.append(Panel(body, border_style="red" if over else "blue"))
    if preview.link:
        parts.append(Text.assemble((_("Link: "), "bold"), preview.link))
    if len(preview.images) > 1:
        parts.extend(album_lines(preview.images, shown))
    elif preview.image:
        parts.append(Text.assemble((_("Image: "), "bold"), preview.image))
    if preview.hashtags:
        parts.append(Text.assemble((_("Hashtags: "), "bold"), " ".join(preview.hashtags)))
    for problem in preview.problems:
        parts.append(
            Text(f"• {problem.message} [{problem.code}]", style=SEVERITY_STYLE[problem.severity])
        )
    if not preview.problems:
        parts.append(Text(_("No problems found by the adaptation."), style="dim green"))
    return Group(*parts)


class ChannelPreviewView(Static):
    DEFAULT_CSS = """
    ChannelPreviewView { height: auto; padding: 0 1; }
    """

    def __init__(self, preview: ChannelPreview, state: str) -> None:
        super().__init__(render_preview(preview, state))
        self.preview = preview
        self.state = state
        self.shown = 0  # the album's photo on screen

    def step(self, by: int) -> bool:
        """Show the album's next (1) or previous (-1) photo, round the end; False when
        there is no album."""
        count = len(self.preview.images)
        if count < 2:
            return False
        self.shown = (self.shown + by) % count
        self.update(render_preview(self.preview, self.state, self.shown))
        return True
