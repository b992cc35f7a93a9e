"""Giám sát / Coverage: for one directive, units × channels with state and lag, and a chart."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Select, Sparkline, Static

from publisher.reports import Coverage, coverage_curve
from publisher.views import DirectiveView
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen

CELL_STYLE = {
    "sent": "green",
    "pending": "cyan",
    "awaiting_approval": "yellow",
    "failed": "bold red",
    "paused": "magenta",
    "expired": "red",
}
CHART_POINTS = 48
BAR_WIDTH = 40


def bar(counts: Counter[str], total: int) -> Text:
    """One line: each state's share of the cells, as coloured blocks, then the legend."""
    text = Text()
    if not total:
        return text
    for state, n in counts.most_common():
        width = max(1, round(BAR_WIDTH * n / total))
        text.append("█" * width, style=CELL_STYLE.get(state, "white"))
    text.append("  ")
    for state, n in counts.most_common():
        text.append(f"{formatting.delivery_state(state)} {n}  ", style=CELL_STYLE.get(state, ""))
    return text


class CoverageScreen(DataScreen):
    AUTO_FOCUS = "#coverage-table"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("slash", "choose", "Choose directive"),
        Key("ctrl+r", "refresh", "Refresh", show=False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.directive_list: list[DirectiveView] = []
        self.article_id: int | None = None
        self.report: Coverage | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Select[int]([], prompt=_("Choose a directive"), id="directive")
        yield Static("", id="coverage-status", classes="status-line")
        yield DataTable(id="coverage-table", cursor_type="row")
        with Vertical(id="coverage-chart"):
            yield Static(_("Share of channels sent since the directive (last 24 h)"))
            yield Sparkline([], id="coverage-spark")
            yield Static("", id="coverage-bar")
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        directives = await self.fetch(self.backend.directives)
        if [d.article_id for d in directives] != [d.article_id for d in self.directive_list]:
            self.directive_list = directives
            select: Select[int] = self.query_one("#directive", Select)
            with self.prevent(Select.Changed):
                select.set_options(
                    [
                        (f"{formatting.when(d.published_at)} · {d.title}", d.article_id)
                        for d in directives
                    ]
                )
                if self.article_id is None and directives:
                    self.article_id = directives[0].article_id
                if self.article_id is not None:
                    select.value = self.article_id
        if self.article_id is None:
            self.query_one("#coverage-status", Static).update(_("No directive yet."))
            return
        user, now, article_id = self.publisher.user, self.publisher.now(), self.article_id
        self.report = await self.fetch(lambda: self.backend.coverage(user, article_id, now))
        self.show()

    def show(self) -> None:
        report = self.report
        assert report is not None
        table = self.query_one("#coverage-table", DataTable)
        table.clear(columns=True)
        table.add_column(_("Unit"), width=30)
        for platform in report.platforms:
            table.add_column(formatting.PLATFORM_SHORT.get(platform, platform), width=4)
        table.add_column(_("Sent"), width=7)
        table.add_column(_("Lag"), width=10)
        counts: Counter[str] = Counter()
        for unit in report.units:
            row: list[str | Text] = [
                Text(f"{unit.unit.code} · {unit.unit.name}", overflow="ellipsis")
            ]
            for platform in report.platforms:
                cell = next((c for c in unit.cells if c.platform == platform), None)
                if cell is None:
                    row.append(Text(" ", style="dim"))
                    continue
                counts[cell.state] += 1
                glyph = formatting.STATE_GLYPHS.get(cell.state, "*")
                row.append(Text(glyph, style=CELL_STYLE.get(cell.state, "")))
            row.append(f"{unit.sent}/{unit.targeted}")
            lag = unit.first_lag_s
            row.append(formatting.duration(lag) if lag is not None else Text("—", style="dim"))
            table.add_row(*row, key=unit.unit.code)
        total = report.total
        self.query_one("#coverage-status", Static).update(
            _("{title}: {sent}/{targeted} channels sent ({percent}%), median lag {lag}").format(
                title=report.article.title,
                sent=total.sent,
                targeted=total.targeted,
                percent=total.percent_sent,
                lag=formatting.duration(total.median_lag_s),
            )
        )
        lags = [
            c.lag_s
            for u in report.units
            for c in u.cells
            for _i in range(c.sent)
            if c.lag_s is not None
        ]
        points = coverage_curve(lags, total.targeted, 24 * 60)
        samples = []
        for step in range(CHART_POINTS):
            minute = 24 * 60 * step / (CHART_POINTS - 1)
            value = 0.0
            for at, percent in points:
                if at <= minute:
                    value = percent
            samples.append(value)
        self.query_one("#coverage-spark", Sparkline).data = samples
        self.query_one("#coverage-bar", Static).update(bar(counts, sum(counts.values())))

    @on(Select.Changed, "#directive")
    def directive_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, int):
            self.article_id = event.value
            self.reload()

    def action_choose(self) -> None:
        self.query_one("#directive").focus()

    def action_refresh(self) -> None:
        self.reload()
