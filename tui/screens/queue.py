"""Hàng chờ / Queue: posts of the signed-in user's units, filtered, a page at a time."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from publisher.domain import PostState, Unit
from publisher.plan_import import TimeFormatError, parse_local_time
from publisher.views import Page, QueueFilter, QueueItem
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen
from tui.screens.prompt import PromptDialog, required
from tui.widgets.filter_bar import FilterBar


def check_time(text: str) -> str | None:
    try:
        parse_local_time(text)
    except TimeFormatError:
        return _("Write the time as dd/mm/yyyy HH:MM, for example 14/11/2026 09:00.")
    return None


def channels_cell(item: QueueItem) -> Text:
    text = Text()
    for channel in item.channels:
        glyph = formatting.STATE_GLYPHS.get(channel.state, "·")
        style = {"✓": "green", "✗": "bold red", "!": "yellow", "‖": "magenta"}.get(glyph, "")
        short = formatting.PLATFORM_SHORT.get(channel.platform, channel.platform)
        text.append(f"{short}{glyph} ", style=style)
    return text


class QueueScreen(DataScreen):
    AUTO_FOCUS = "#queue-table"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("a", "approve", "Approve"),
        Key("r", "reject", "Reject"),
        Key("e", "edit", "Edit lead-in"),
        Key("s", "reschedule", "Reschedule"),
        Key("n", "post_now", "Post now"),
        Key("t", "retry", "Retry", show=False),
        Key("c", "cancel", "Cancel", show=False),
        Key("space", "mark", "Select", key_display="␣"),
        Key("A", "approve_marked", "Approve selected", key_display="⇧A"),
        Key("pagedown,right_square_bracket", "page(1)", "Next page", show=False, priority=True),
        Key("pageup,left_square_bracket", "page(-1)", "Previous page", show=False, priority=True),
        Key("slash", "search", "Search", show=False),
        Key("ctrl+r", "refresh", "Refresh", show=False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.wanted = QueueFilter()
        self.first_row = 0
        self.page: Page[QueueItem] = Page((), 0, 0, 50)
        self.marked: set[int] = set()
        self.units: list[Unit] = []
        self.units_asked = False  # the unit filter's choices (3,400 units) are read once
        # the first page is on screen, not in its way (DataScreen.on_mount loads the page)
        self.counts: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield FilterBar(self.units, self.wanted, id="filters")
        yield Static("", id="queue-status", classes="status-line")
        table: DataTable[str | Text] = DataTable(
            id="queue-table", cursor_type="row", zebra_stripes=True
        )
        table.add_column("", key="mark", width=1)
        table.add_column(_("No."), key="id", width=5)
        table.add_column(_("Unit"), key="unit", width=18)
        table.add_column(_("Title"), key="title", width=34)
        table.add_column(_("Kind"), key="kind", width=9)
        table.add_column(_("State"), key="state", width=10)
        table.add_column(_("Time"), key="time", width=16)
        table.add_column(_("Channels"), key="channels")
        yield table
        yield Footer()

    @work(group="units")
    async def load_units(self) -> None:
        user = self.publisher.user
        units = await self.fetch(lambda: self.backend.units(user))
        if [u.code for u in units] != [u.code for u in self.units]:
            self.units = units
            self.query_one(FilterBar).set_units(units)

    # --- data --------------------------------------------------------------------------

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#queue-table", DataTable)

    def reload(self) -> None:
        self.load_page()

    @work(exclusive=True, group="load")
    async def load_page(self) -> None:
        user, wanted, offset = self.publisher.user, self.wanted, self.first_row
        limit = self.publisher.settings.page_size

        def read() -> tuple[Page[QueueItem], dict[str, int]]:
            # One pass over the user's posts for both (Views.queue_and_counts).
            return self.backend.queue_and_counts(user, wanted, offset, limit)

        page, counts = await self.fetch(read)
        if page.total and not page.items and offset > 0:  # the last page emptied: step back
            self.first_row = max(0, (page.total - 1) // limit * limit)
            self.load_page()
            return
        before = self.counts.get(PostState.AWAITING_APPROVAL.value)
        waiting = counts.get(PostState.AWAITING_APPROVAL.value, 0)
        if before is not None and waiting > before:
            self.notify(_("New posts are waiting: {n}").format(n=waiting - before), timeout=4)
        self.page, self.counts = page, counts
        self.show_page()
        if not self.units_asked:
            self.units_asked = True
            self.load_units()

    def show_page(self) -> None:
        table = self.table
        keep = table.cursor_row
        table.clear()
        for item in self.page.items:
            waiting = item.state == PostState.AWAITING_APPROVAL.value
            title = Text(("⚡ " if item.urgent else "") + item.title, overflow="ellipsis")
            if not waiting:
                title.stylize("dim")
            table.add_row(
                "●" if item.post_id in self.marked else "",
                str(item.post_id),
                f"{item.unit_code} · {item.unit_name}",
                title,
                formatting.kind(item.kind),
                formatting.post_state(item.state),
                formatting.when(item.scheduled_at),
                channels_cell(item),
                key=str(item.post_id),
            )
        if self.page.items:
            table.move_cursor(row=min(keep, len(self.page.items) - 1))
        self.show_status()

    def show_status(self) -> None:
        counts = " · ".join(
            f"{formatting.post_state(state)} {n}" for state, n in self.counts.items()
        )
        page = self.page
        where = _("Page {page}/{pages} ({total} posts)").format(
            page=page.page_number, pages=page.page_count, total=page.total
        )
        marked = _("Selected: {n}").format(n=len(self.marked)) if self.marked else ""
        self.query_one("#queue-status", Static).update(
            "  │  ".join(part for part in (counts, where, marked) if part)
        )

    def current(self) -> QueueItem | None:
        table = self.table
        if not self.page.items or table.cursor_row < 0:
            return None
        row = table.cursor_row
        return self.page.items[row] if row < len(self.page.items) else None

    # --- filters and paging ------------------------------------------------------------

    @on(FilterBar.Changed)
    def filter_changed(self, event: FilterBar.Changed) -> None:
        self.wanted = event.wanted
        self.first_row = 0
        self.reload()

    def action_page(self, step: int) -> None:
        size = self.publisher.settings.page_size
        target = self.first_row + step * size
        if 0 <= target < max(self.page.total, 1):
            self.first_row = target
            self.reload()

    def action_search(self) -> None:
        self.query_one("#f-search").focus()

    def action_refresh(self) -> None:
        self.reload()

    def action_mark(self) -> None:
        item = self.current()
        if item is None:
            return
        self.marked ^= {item.post_id}
        self.table.update_cell(
            str(item.post_id), "mark", "●" if item.post_id in self.marked else ""
        )
        self.table.action_cursor_down()
        self.show_status()

    # --- decisions ---------------------------------------------------------------------

    def action_approve(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        user = self.publisher.user
        self.decide(
            _("Approved post {id}.").format(id=item.post_id),
            partial(self.backend.approve, user, [item.post_id]),
        )
        return None

    def action_approve_marked(self) -> None:
        if not self.marked:
            return self.no_selection()
        ids = sorted(self.marked)
        self.marked = set()
        user = self.publisher.user
        self.decide(
            _("Approved {n} posts.").format(n=len(ids)), partial(self.backend.approve, user, ids)
        )
        return None

    def action_reject(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        user = self.publisher.user

        def rejected(reason: str | None) -> None:
            if reason:
                self.decide(
                    _("Rejected post {id}.").format(id=item.post_id),
                    partial(self.backend.reject, user, item.post_id, reason),
                )

        self.app.push_screen(
            PromptDialog(
                _("Reject post {id}: why?").format(id=item.post_id),
                placeholder=_("The reason is recorded and shown to the editor"),
                check=required,
            ),
            rejected,
        )
        return None

    def action_edit(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        user = self.publisher.user

        def edited(text: str | None) -> None:
            if text is not None:
                self.decide(
                    _("Lead-in saved for post {id}.").format(id=item.post_id),
                    partial(self.backend.edit_lead_in, user, item.post_id, text),
                )

        self.app.push_screen(
            PromptDialog(
                _("Lead-in of post {id}").format(id=item.post_id),
                value=item.lead_in,
                hint=_("Only the unit's opening line can change; a directive's text stays locked."),
            ),
            edited,
        )
        return None

    def action_reschedule(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        user = self.publisher.user
        start = item.scheduled_at or (self.publisher.now() + timedelta(hours=1))

        def chosen(text: str | None) -> None:
            if text:
                when = parse_local_time(text)
                self.decide(
                    _("Post {id} moved to {when}.").format(
                        id=item.post_id, when=formatting.when(when)
                    ),
                    partial(self.backend.reschedule, user, item.post_id, when),
                )

        self.app.push_screen(
            PromptDialog(
                _("New time for post {id}").format(id=item.post_id),
                value=formatting.when(start),
                hint=_("dd/mm/yyyy HH:MM, 24-hour, Vietnam time"),
                check=check_time,
            ),
            chosen,
        )
        return None

    def action_post_now(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        self.decide(
            _("Post {id} goes out now.").format(id=item.post_id),
            partial(self.backend.post_now, self.publisher.user, item.post_id),
        )
        return None

    def action_retry(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        failed = [c.delivery_id for c in item.channels if c.state in ("failed", "needs_review")]
        if not failed:
            self.notify(_("Nothing to retry on this post."), severity="warning", timeout=3)
            return None
        user = self.publisher.user

        def retry_all() -> None:
            for delivery_id in failed:
                self.backend.retry(user, delivery_id)

        self.decide(_("Retry queued for {n} channels.").format(n=len(failed)), retry_all)
        return None

    def action_cancel(self) -> None:
        item = self.current()
        if item is None:
            return self.no_selection()
        user = self.publisher.user

        def cancelled(reason: str | None) -> None:
            if reason:
                self.decide(
                    _("Cancelled post {id}.").format(id=item.post_id),
                    partial(self.backend.cancel, user, item.post_id, reason),
                )

        self.app.push_screen(
            PromptDialog(_("Cancel post {id}: why?").format(id=item.post_id), check=required),
            cancelled,
        )
        return None

    @on(DataTable.RowSelected, "#queue-table")
    def open_post(self, event: DataTable.RowSelected) -> None:
        from tui.screens.post import PostScreen

        if event.row_key.value is not None:
            self.app.push_screen(PostScreen(int(event.row_key.value)))
