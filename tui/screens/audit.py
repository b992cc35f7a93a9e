"""Nhật ký / Audit: the decision trail, newest first, filtered by who, what or where."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Input, Static

from publisher.domain import canonical_json
from publisher.views import AuditView, Page
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen


class AuditScreen(DataScreen):
    AUTO_FOCUS = "#audit-table"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("slash", "search", "Filter"),
        Key("pagedown,right_square_bracket", "page(1)", "Next page"),
        Key("pageup,left_square_bracket", "page(-1)", "Previous page"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.first_row = 0
        self.text = ""
        self.page: Page[AuditView] = Page((), 0, 0, 50)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(self.text, placeholder=_("Filter by user, action or target"), id="audit-filter")
        yield Static("", id="audit-status", classes="status-line")
        table: DataTable[str | Text] = DataTable(id="audit-table", cursor_type="row")
        table.add_column("#", width=6)
        table.add_column(_("Time"), width=16)
        table.add_column(_("By"), width=18)
        table.add_column(_("Action"), width=16)
        table.add_column(_("Target"), width=22)
        table.add_column(_("Details"))
        yield table
        yield Static("", id="audit-detail")
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user, text, first = self.publisher.user, self.text, self.first_row
        limit = self.publisher.settings.page_size
        self.page = await self.fetch(lambda: self.backend.audit(user, text, first, limit))
        table = self.query_one("#audit-table", DataTable)
        table.clear()
        for event in self.page.items:
            table.add_row(
                str(event.seq),
                formatting.when(event.at),
                event.actor,
                event.action,
                event.target,
                Text(canonical_json(dict(event.details)), overflow="ellipsis"),
                key=str(event.seq),
            )
        self.query_one("#audit-status", Static).update(
            _("Page {page}/{pages} ({total} events)").format(
                page=self.page.page_number, pages=self.page.page_count, total=self.page.total
            )
        )

    @on(Input.Changed, "#audit-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.text = event.value
        self.first_row = 0
        self.reload()

    @on(Input.Submitted, "#audit-filter")
    def filter_done(self) -> None:
        self.query_one("#audit-table").focus()

    @on(DataTable.RowHighlighted, "#audit-table")
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        row = event.cursor_row
        if 0 <= row < len(self.page.items):
            e = self.page.items[row]
            self.query_one("#audit-detail", Static).update(
                Text.assemble(
                    (f"#{e.seq} {e.action} {e.target}\n", "bold"),
                    canonical_json(dict(e.details)),
                )
            )

    def action_search(self) -> None:
        self.query_one("#audit-filter").focus()

    def action_page(self, step: int) -> None:
        target = self.first_row + step * self.publisher.settings.page_size
        if 0 <= target < max(self.page.total, 1):
            self.first_row = target
            self.reload()
