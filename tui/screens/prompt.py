"""A small modal that asks for one line (a reason, a lead-in, a time) and checks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.i18n import _

Check = Callable[[str], str | None]  # the text → an error message, or None when fine


def required(text: str) -> str | None:
    return None if text.strip() else _("This cannot be empty.")


class PromptDialog(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(
        self,
        title: str,
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "",
        check: Check | None = None,
        password: bool = False,
    ) -> None:
        super().__init__()
        self.password = password  # a secret: typed masked, never shown
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Input(
                self.value, placeholder=self.placeholder, password=self.password, id="dialog-input"
            )
            yield Static(self.hint, id="dialog-hint")
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_("OK"), variant="primary", id="ok")
                yield Button(_("Cancel"), id="cancel")

    @on(Input.Submitted, "#dialog-input")
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        text = self.query_one("#dialog-input", Input).value
        problem = self.check(text) if self.check else None
        if problem:
            self.query_one("#dialog-error", Static).update(problem)
            return
        self.dismiss(text.strip())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
