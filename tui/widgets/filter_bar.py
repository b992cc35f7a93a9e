"""The queue's filters: unit, channel, state, kind, day and a search box."""

from __future__ import annotations

from datetime import date, datetime

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Select

from publisher.domain import ArticleKind, Platform, PostState, Unit
from publisher.views import QueueFilter
from tui import formatting
from tui.i18n import _


def parse_day(text: str) -> date | None:
    """dd/mm/yyyy → a date; raises ValueError on anything else."""
    return datetime.strptime(text.strip(), "%d/%m/%Y").date()  # noqa: DTZ007 - a date only


class FilterBar(Horizontal):
    DEFAULT_CSS = """
    FilterBar { height: 3; }
    FilterBar Select { width: 1fr; }
    FilterBar #f-unit { width: 2fr; }
    FilterBar Input { width: 1fr; }
    FilterBar #f-search { width: 2fr; }
    """

    class Changed(Message):
        def __init__(self, wanted: QueueFilter) -> None:
            super().__init__()
            self.wanted = wanted

    def __init__(self, units: list[Unit], wanted: QueueFilter, id: str | None = None) -> None:
        super().__init__(id=id)
        self.units = units
        self.wanted = wanted

    @staticmethod
    def unit_options(units: list[Unit]) -> list[tuple[str, str]]:
        return [(f"{u.code} · {u.short_name or u.name}", u.code) for u in units[:500]]

    def set_units(self, units: list[Unit]) -> None:
        self.units = units
        select: Select[str] = self.query_one("#f-unit", Select)
        with self.prevent(Select.Changed):
            select.set_options(self.unit_options(units))
            if self.wanted.unit in {u.code for u in units}:
                select.value = self.wanted.unit

    def compose(self) -> ComposeResult:
        w = self.wanted
        yield Select(
            self.unit_options(self.units),
            prompt=_("Unit"),
            value=w.unit if w.unit else Select.NULL,
            id="f-unit",
        )
        yield Select(
            [(formatting.platform(p.value), p.value) for p in Platform],
            prompt=_("Channel"),
            value=w.channel if w.channel else Select.NULL,
            id="f-channel",
        )
        yield Select(
            [(formatting.post_state(s.value), s.value) for s in PostState],
            prompt=_("State"),
            value=w.state if w.state else Select.NULL,
            id="f-state",
        )
        yield Select(
            [(formatting.kind(k.value), k.value) for k in ArticleKind],
            prompt=_("Kind"),
            value=w.kind if w.kind else Select.NULL,
            id="f-kind",
        )
        yield Input(
            w.day.strftime("%d/%m/%Y") if w.day else "",
            placeholder=_("dd/mm/yyyy"),
            id="f-day",
        )
        yield Input(w.search, placeholder=_("Search title or unit"), id="f-search")

    def _value(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return value if isinstance(value, str) else None

    def _emit(self) -> None:
        day_text = self.query_one("#f-day", Input).value.strip()
        day = None
        if day_text:
            try:
                day = parse_day(day_text)
            except ValueError:
                self.query_one("#f-day", Input).add_class("-invalid")
                return
        self.query_one("#f-day", Input).remove_class("-invalid")
        self.wanted = QueueFilter(
            unit=self._value("#f-unit"),
            channel=self._value("#f-channel"),
            state=self._value("#f-state"),
            kind=self._value("#f-kind"),
            day=day,
            search=self.query_one("#f-search", Input).value,
        )
        self.post_message(self.Changed(self.wanted))

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._emit()

    @on(Input.Submitted)
    @on(Input.Changed, "#f-search")
    def _input_changed(self, event: Input.Submitted | Input.Changed) -> None:
        event.stop()
        self._emit()
