"""Lịch / Calendar: deliveries per unit and channel over a day (hours) or a week (days).

Quiet hours are marked in the header (☾), paused rows with ‖. Move the cursor to a cell and
press + or - to move its first post one slot later or earlier, or s to type a time.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Static

from publisher.domain import VIETNAM_TZ, Pause, PauseScope
from publisher.plan_import import parse_local_time
from publisher.views import DeliveryView
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen
from tui.screens.prompt import PromptDialog
from tui.screens.queue import check_time

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def in_quiet(hour: int, quiet: tuple[int, int]) -> bool:
    start, end = quiet
    if start == end:
        return False
    return start <= hour < end if start < end else hour >= start or hour < end


def paused(entry: DeliveryView, pauses: list[Pause]) -> bool:
    for pause in pauses:
        if pause.scope is PauseScope.ALL:
            return True
        if pause.scope is PauseScope.CHANNEL and pause.target == entry.platform:
            return True
        if pause.scope is PauseScope.ACCOUNT and pause.target == entry.account_id:
            return True
        if pause.scope in (PauseScope.UNIT, PauseScope.SUBTREE) and pause.target == entry.unit_code:
            return True
    return False


class CalendarScreen(DataScreen):
    AUTO_FOCUS = "#calendar-grid"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("d", "view('day')", "Day"),
        Key("w", "view('week')", "Week"),
        Key("comma", "shift(-1)", "Earlier period", key_display=","),
        Key("full_stop", "shift(1)", "Later period", key_display="."),
        Key("plus,equals_sign", "move(1)", "Move later", key_display="+"),
        Key("minus", "move(-1)", "Move earlier", key_display="-"),
        Key("s", "reschedule", "Reschedule"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.span = "day"
        self.start_day: date | None = None
        self.entries: list[DeliveryView] = []
        self.pause_rows: list[Pause] = []
        self.cells: dict[tuple[str, int], list[DeliveryView]] = {}
        self.row_keys: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="calendar-status", classes="status-line")
        yield DataTable(id="calendar-grid", cursor_type="cell")
        yield Static("", id="calendar-detail")
        yield Footer()

    def period(self) -> tuple[datetime, datetime, int]:
        if self.start_day is None:
            self.start_day = self.publisher.now().astimezone(VIETNAM_TZ).date()
        start = datetime.combine(self.start_day, time(0, 0), tzinfo=VIETNAM_TZ)
        if self.span == "day":
            return start, start + timedelta(days=1), 24
        monday = start - timedelta(days=start.weekday())
        return monday, monday + timedelta(days=7), 7

    def slot_of(self, moment: datetime, start: datetime) -> int:
        local = moment.astimezone(VIETNAM_TZ)
        if self.span == "day":
            return local.hour
        return (local.date() - start.date()).days

    def slot_length(self) -> timedelta:
        return timedelta(hours=1) if self.span == "day" else timedelta(days=1)

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user, now = self.publisher.user, self.publisher.now()
        start, end, _slots = self.period()

        def read() -> tuple[list[DeliveryView], list[Pause]]:
            return self.backend.calendar(user, start, end, None, None), self.backend.pauses(now)

        self.entries, self.pause_rows = await self.fetch(read)
        self.show()

    def show(self) -> None:
        start, end, slots = self.period()
        quiet = self.publisher.settings.quiet_hours
        table = self.query_one("#calendar-grid", DataTable)
        keep = table.cursor_coordinate
        table.clear(columns=True)
        table.add_column(_("Unit · channel"), width=24, key="row")
        for slot in range(slots):
            if self.span == "day":
                label = f"{slot:02d}" + ("☾" if in_quiet(slot, quiet) else "")
                table.add_column(label, width=3, key=str(slot))
            else:
                d = (start + timedelta(days=slot)).date()
                table.add_column(f"{_(WEEKDAYS[d.weekday()])} {d:%d/%m}", width=9, key=str(slot))
        cells: dict[tuple[str, int], list[DeliveryView]] = defaultdict(list)
        rows: dict[str, bool] = {}
        for entry in self.entries:
            short = formatting.PLATFORM_SHORT.get(entry.platform, entry.platform)
            key = f"{entry.unit_code} · {short}"
            cells[(key, self.slot_of(entry.due_at, start))].append(entry)
            rows[key] = rows.get(key, False) or paused(entry, self.pause_rows)
        self.cells = dict(cells)
        self.row_keys = sorted(rows)
        for key in self.row_keys:
            values: list[str | Text] = [
                Text(key + (" ‖" if rows[key] else ""), style="magenta" if rows[key] else "")
            ]
            for slot in range(slots):
                found = cells.get((key, slot), [])
                if not found:
                    dim = self.span == "day" and in_quiet(slot, quiet)
                    values.append(Text("·", style="dim" if dim else "bright_black"))
                    continue
                glyphs = {formatting.STATE_GLYPHS.get(e.state, "·") for e in found}
                mark = glyphs.pop() if len(glyphs) == 1 else "*"
                style = "bold red" if mark == "✗" else ("green" if mark == "✓" else "bold")
                values.append(Text(f"{len(found)}{mark}" if len(found) > 1 else mark, style=style))
            table.add_row(*values, key=key)
        if self.row_keys:
            table.cursor_coordinate = table.validate_cursor_coordinate(keep)
        view = _("Day") if self.span == "day" else _("Week")
        span = (
            formatting.day(start)
            if self.span == "day"
            else (f"{formatting.day(start)} – {formatting.day(end - timedelta(days=1))}")
        )
        quiet_text = _("quiet hours {start:02d}:00–{end:02d}:00").format(
            start=quiet[0], end=quiet[1]
        )
        pauses = "; ".join(f"‖ {p.scope.value} {p.target}: {p.reason}" for p in self.pause_rows)
        self.query_one("#calendar-status", Static).update(
            f"{view} {span} · {len(self.entries)} {_('deliveries')} · ☾ {quiet_text}"
            + (f" · {pauses}" if pauses else "")
        )
        self.show_cell()

    def selected(self) -> list[DeliveryView]:
        table = self.query_one("#calendar-grid", DataTable)
        row, column = table.cursor_coordinate
        if not self.row_keys or column == 0 or row >= len(self.row_keys):
            return []
        return self.cells.get((self.row_keys[row], column - 1), [])

    @on(DataTable.CellHighlighted, "#calendar-grid")
    def show_cell(self) -> None:
        found = self.selected()
        lines = [
            f"{formatting.when(e.due_at)} · #{e.post_id} · {e.account_id} · "
            f"{formatting.delivery_state(e.state)} · {e.title}"
            for e in found[:4]
        ]
        if len(found) > 4:
            lines.append(_("… and {n} more").format(n=len(found) - 4))
        self.query_one("#calendar-detail", Static).update(
            "\n".join(lines) or _("Move to a cell to see what is planned there.")
        )

    def action_view(self, view: str) -> None:
        self.span = view
        self.reload()

    def action_shift(self, step: int) -> None:
        self.period()
        assert self.start_day is not None
        self.start_day += timedelta(days=step * (1 if self.span == "day" else 7))
        self.reload()

    def action_move(self, step: int) -> None:
        found = self.selected()
        if not found:
            return self.no_selection()
        entry = found[0]
        when = entry.due_at + step * self.slot_length()
        self.decide(
            _("Post {id} moved to {when}.").format(id=entry.post_id, when=formatting.when(when)),
            partial(self.backend.reschedule, self.publisher.user, entry.post_id, when),
        )
        table = self.query_one("#calendar-grid", DataTable)
        table.move_cursor(column=table.cursor_column + step)
        return None

    def action_reschedule(self) -> None:
        found = self.selected()
        if not found:
            return self.no_selection()
        entry = found[0]
        user = self.publisher.user

        def chosen(text: str | None) -> None:
            if text:
                when = parse_local_time(text)
                self.decide(
                    _("Post {id} moved to {when}.").format(
                        id=entry.post_id, when=formatting.when(when)
                    ),
                    partial(self.backend.reschedule, user, entry.post_id, when),
                )

        self.app.push_screen(
            PromptDialog(
                _("New time for post {id}").format(id=entry.post_id),
                value=formatting.when(entry.due_at),
                hint=_("dd/mm/yyyy HH:MM, 24-hour, Vietnam time"),
                check=check_time,
            ),
            chosen,
        )
        return None
