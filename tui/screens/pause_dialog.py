"""Asks how to pause: which scope (unit, subtree, channel), why, and until when (optional)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from publisher.domain import PauseScope, Platform
from publisher.plan_import import TimeFormatError, parse_local_time
from tui import formatting
from tui.i18n import _


@dataclass(frozen=True, slots=True)
class PauseRequest:
    scope: PauseScope
    target: str
    reason: str
    until: datetime | None


class PauseDialog(ModalScreen[PauseRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, unit_code: str, unit_name: str, now: datetime) -> None:
        super().__init__()
        self.unit_code = unit_code
        self.unit_name = unit_name
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(_("Pause sending: {unit}").format(unit=self.unit_name), id="dialog-title")
            yield Select(
                [
                    (_("This unit only"), PauseScope.UNIT.value),
                    (_("This unit and every unit below it"), PauseScope.SUBTREE.value),
                    (_("One channel everywhere"), PauseScope.CHANNEL.value),
                ],
                value=PauseScope.SUBTREE.value,
                allow_blank=False,
                id="pause-scope",
            )
            yield Select(
                [(formatting.platform(p.value), p.value) for p in Platform],
                prompt=_("Channel"),
                id="pause-channel",
            )
            yield Input(placeholder=_("Reason (recorded in the audit trail)"), id="pause-reason")
            yield Input(
                placeholder=_("Until dd/mm/yyyy HH:MM (empty: until resumed)"), id="pause-until"
            )
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_("Pause"), variant="error", id="ok")
                yield Button(_("Cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one("#pause-reason").focus()

    def _error(self, message: str) -> None:
        self.query_one("#dialog-error", Static).update(message)

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        scope = PauseScope(str(self.query_one("#pause-scope", Select).value))
        target = self.unit_code
        if scope is PauseScope.CHANNEL:
            channel = self.query_one("#pause-channel", Select).value
            if not isinstance(channel, str):
                return self._error(_("Choose the channel to pause."))
            target = channel
        reason = self.query_one("#pause-reason", Input).value.strip()
        if not reason:
            return self._error(_("A pause needs a reason."))
        until_text = self.query_one("#pause-until", Input).value.strip()
        until = None
        if until_text:
            try:
                until = parse_local_time(until_text)
            except TimeFormatError:
                return self._error(
                    _("Write the time as dd/mm/yyyy HH:MM, for example 14/11/2026 09:00.")
                )
            if until <= self.now:
                return self._error(_("The end time has already passed."))
        self.dismiss(PauseRequest(scope, target, reason, until))
        return None

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
