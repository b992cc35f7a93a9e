"""Kế hoạch / Bulk plan: a CSV of posts checked row by row, then saved in one go."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import DataTable, Footer, Header, Input, Static

from publisher.plan_import import PlanResult
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.plan_check import check_plan_file
from tui.ports import ActionRefused
from tui.screens.base import DataScreen


def read_text(path: Path) -> str:
    return path.expanduser().read_text(encoding="utf-8-sig")


class PlanScreen(DataScreen):
    AUTO_FOCUS = "#plan-path"
    KEYS: ClassVar[tuple[Key, ...]] = (Key("ctrl+s", "save", "Save plan", priority=True),)

    def __init__(self) -> None:
        super().__init__()
        self.result: PlanResult | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            _("CSV columns: article, unit, channels, time (dd/mm/yyyy HH:MM), lead_in"),
            classes="status-line",
        )
        yield Input(placeholder=_("Path of the CSV file, then Enter"), id="plan-path")
        yield Static("", id="plan-status", classes="status-line")
        yield DataTable(id="plan-errors", cursor_type="row")
        yield Footer()

    @on(Input.Submitted, "#plan-path")
    def check(self, event: Input.Submitted) -> None:
        self.check_file(event.value.strip())

    @work(exclusive=True, group="load")
    async def check_file(self, path_text: str) -> None:
        status = self.query_one("#plan-status", Static)
        path = Path(path_text)
        try:
            text = await self.fetch(partial(read_text, path))
        except (OSError, UnicodeDecodeError) as error:
            self.result = None
            status.update(
                Text(
                    _("Cannot read {path}: {error}").format(path=path, error=error),
                    style="bold red",
                )
            )
            return
        user, now = self.publisher.user, self.publisher.now()
        self.result = await self.fetch(lambda: check_plan_file(self.backend, user, text, now))
        self.show()

    def show(self) -> None:
        result = self.result
        assert result is not None
        table = self.query_one("#plan-errors", DataTable)
        table.clear(columns=True)
        status = self.query_one("#plan-status", Static)
        if result.errors:
            table.add_column(_("Row"), width=6)
            table.add_column(_("Column"), width=10)
            table.add_column(_("Reason"))
            for error in result.errors:
                table.add_row(str(error.line), error.column, error.reason)
            status.update(
                Text(
                    _("{n} problems: nothing will be saved until every row is right.").format(
                        n=len(result.errors)
                    ),
                    style="bold red",
                )
            )
            return
        table.add_column(_("Row"), width=6)
        table.add_column(_("Article"), width=8)
        table.add_column(_("Unit"), width=8)
        table.add_column(_("Channels"), width=30)
        table.add_column(_("Time"), width=16)
        table.add_column(_("Lead-in"))
        for row in result.rows:
            table.add_row(
                str(row.line),
                str(row.article_id),
                row.unit_code,
                " ".join(p.value for p in row.platforms) or _("all"),
                formatting.when(row.at),
                row.lead_in,
            )
        status.update(
            Text(
                _("{n} rows are correct. Press Ctrl+S to save them.").format(n=len(result.rows)),
                style="green",
            )
        )

    def action_save(self) -> None:
        result = self.result
        if result is None or not result.ok or not result.rows:
            self.notify(_("Check a correct plan first."), severity="warning")
            return
        self.save(result)

    @work(exclusive=True, group="decide")
    async def save(self, result: PlanResult) -> None:
        user = self.publisher.user
        try:
            saved = await self.fetch(lambda: self.backend.import_plan(user, result.rows))
        except ActionRefused as refused:
            self.publisher.refuse(refused.reason)
            return
        self.result = None
        self.query_one("#plan-status", Static).update(
            Text(_("Saved {n} planned posts.").format(n=saved), style="bold green")
        )
