"""Sự cố / Problems: failed, unknown and needs-review deliveries, in plain words."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from publisher.views import DeliveryView, Page
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen
from tui.screens.prompt import PromptDialog, required

# What resolves each state, said to the person looking at it.
REMEDIES = {
    "failed": "Retry (t) after fixing the cause, or cancel the post (c).",
    "unknown": (
        "Wait: the outcome is being checked on the platform. Retry only if it was not published."
    ),
    "needs_review": "Check the channel page by hand; retry (t) if the post is not there.",
}


class ProblemsScreen(DataScreen):
    AUTO_FOCUS = "#problem-table"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("t", "retry", "Retry"),
        Key("c", "cancel", "Cancel post"),
        Key("enter", "open", "Open post", show=False),
        Key("pagedown,right_square_bracket", "page(1)", "Next page", show=False, priority=True),
        Key("pageup,left_square_bracket", "page(-1)", "Previous page", show=False, priority=True),
    )

    def __init__(self) -> None:
        super().__init__()
        self.first_row = 0
        self.page: Page[DeliveryView] = Page((), 0, 0, 50)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="problem-status", classes="status-line")
        table: DataTable[str | Text] = DataTable(id="problem-table", cursor_type="row")
        table.add_column(_("No."), width=6)
        table.add_column(_("Unit"), width=8)
        table.add_column(_("Channel"), width=9)
        table.add_column(_("State"), width=16)
        table.add_column(_("Tries"), width=5)
        table.add_column(_("Title"), width=30)
        table.add_column(_("What happened"))
        yield table
        yield Static("", id="problem-detail")
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user, first = self.publisher.user, self.first_row
        limit = self.publisher.settings.page_size
        self.page = await self.fetch(lambda: self.backend.problems(user, first, limit))
        table = self.query_one("#problem-table", DataTable)
        keep = table.cursor_row
        table.clear()
        for d in self.page.items:
            table.add_row(
                str(d.post_id),
                d.unit_code,
                formatting.platform(d.platform),
                Text(formatting.delivery_state(d.state), style="bold red"),
                str(d.attempt),
                Text(d.title, overflow="ellipsis"),
                Text(formatting.error_in_words(d.error_kind, d.last_error), overflow="ellipsis"),
                key=str(d.id),
            )
        if self.page.items:
            table.move_cursor(row=min(max(keep, 0), len(self.page.items) - 1))
        status = _("{n} deliveries need a person").format(n=self.page.total)
        if not self.page.total:
            status = _("No problems: every delivery is on track.")
        self.query_one("#problem-status", Static).update(status)
        self.show_detail()

    def current(self) -> DeliveryView | None:
        row = self.query_one("#problem-table", DataTable).cursor_row
        return self.page.items[row] if 0 <= row < len(self.page.items) else None

    @on(DataTable.RowHighlighted, "#problem-table")
    def show_detail(self) -> None:
        d = self.current()
        detail = self.query_one("#problem-detail", Static)
        if d is None:
            detail.update("")
            return
        detail.update(
            Text.assemble(
                (f"{d.title}\n", "bold"),
                f"{d.account_id} · {formatting.when(d.due_at)}\n",
                formatting.error_in_words(d.error_kind, d.last_error),
                "\n",
                (_(REMEDIES.get(d.state, "")), "cyan"),
            )
        )

    def action_page(self, step: int) -> None:
        target = self.first_row + step * self.publisher.settings.page_size
        if 0 <= target < max(self.page.total, 1):
            self.first_row = target
            self.reload()

    def action_retry(self) -> None:
        d = self.current()
        if d is None:
            return self.no_selection()
        self.decide(
            _("Retry queued for {n} channels.").format(n=1),
            partial(self.backend.retry, self.publisher.user, d.id),
        )
        return None

    def action_cancel(self) -> None:
        d = self.current()
        if d is None:
            return self.no_selection()
        user = self.publisher.user

        def cancelled(reason: str | None) -> None:
            if reason:
                self.decide(
                    _("Cancelled post {id}.").format(id=d.post_id),
                    partial(self.backend.cancel, user, d.post_id, reason),
                )

        self.app.push_screen(
            PromptDialog(_("Cancel post {id}: why?").format(id=d.post_id), check=required),
            cancelled,
        )
        return None

    def action_open(self) -> None:
        from tui.screens.post import PostScreen

        d = self.current()
        if d is not None:
            self.app.push_screen(PostScreen(d.post_id))
