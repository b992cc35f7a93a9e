"""Tài khoản kênh / Channel accounts: the accounts in my reach with status, token expiry and
the last check; `t` test, `r` rotate the secret (typed masked), `x` remove (with a reason),
`c` connect a new one. The core decides who may (admins of the unit or above) and asks the
platform before it stores anything; a refusal is shown as a notification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from publisher.accounts import CheckOutcome, ConnectRequest, RemoveOutcome
from publisher.domain import AccountStatus, Platform, Unit
from publisher.views import AccountView
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.ports import ActionRefused
from tui.screens.base import DataScreen
from tui.screens.prompt import PromptDialog, required

R = TypeVar("R")


def status_label(status: AccountStatus) -> Text:
    label = {
        AccountStatus.ACTIVE: _("active"),
        AccountStatus.AUTH_FAILED: _("token refused"),
        AccountStatus.DISABLED: _("removed"),
    }[status]
    style = {AccountStatus.ACTIVE: "", AccountStatus.AUTH_FAILED: "bold red"}.get(status, "dim")
    return Text(label, style=style)


def origin_label(origin: str) -> str:
    return {"config": _("config file"), "connected": _("connected")}.get(origin, origin)


@dataclass(frozen=True, slots=True)
class ConnectForm:
    request: ConnectRequest
    secret: str = ""

    def __repr__(self) -> str:
        return f"ConnectForm({self.request!r}, <secret>)"


class ConnectDialog(ModalScreen[ConnectForm | None]):
    """The form to connect an account: unit, platform, the platform's id, a name, and the
    secret (typed masked, never shown)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, units: list[Unit]) -> None:
        super().__init__()
        self.units = units

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(_("Connect a channel account"), id="dialog-title")
            yield Select(
                [(f"{u.code} · {u.short_name or u.name}", u.code) for u in self.units],
                prompt=_("Unit"),
                value=self.units[0].code if len(self.units) == 1 else Select.NULL,
                id="connect-unit",
            )
            yield Select(
                [(formatting.platform(p.value), p.value) for p in Platform],
                prompt=_("Channel"),
                id="connect-platform",
            )
            yield Input(
                placeholder=_("Page, channel, OA or chat id on the platform"),
                id="connect-external",
            )
            yield Input(placeholder=_("Display name"), id="connect-name")
            yield Input(placeholder=_("Account id (empty: made from the above)"), id="connect-id")
            yield Input(
                placeholder=_("Language only, e.g. vi (empty: every language)"),
                id="connect-language",
            )
            yield Input(
                placeholder=_("Token (hidden; or JSON with token and extra)"),
                password=True,
                id="connect-secret",
            )
            yield Static("", id="dialog-error")
            with Horizontal(id="dialog-buttons"):
                yield Button(_("Connect"), variant="primary", id="ok")
                yield Button(_("Cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one("#connect-external").focus()

    def _error(self, message: str) -> None:
        self.query_one("#dialog-error", Static).update(message)

    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def submit(self) -> None:
        unit = self.query_one("#connect-unit", Select).value
        platform = self.query_one("#connect-platform", Select).value
        if not isinstance(unit, str):
            return self._error(_("Choose the unit."))
        if not isinstance(platform, str):
            return self._error(_("Choose the channel."))
        external = self._text("#connect-external")
        if not external:
            return self._error(_("The platform's id is needed."))
        secret = self.query_one("#connect-secret", Input).value
        if not secret.strip():
            return self._error(_("The token is needed."))
        request = ConnectRequest(
            unit_code=unit,
            platform=platform,
            external_id=external,
            display_name=self._text("#connect-name"),
            account_id=self._text("#connect-id") or None,
            language=self._text("#connect-language") or None,
        )
        self.dismiss(ConnectForm(request, secret))
        return None

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class AccountsScreen(DataScreen):
    AUTO_FOCUS = "#accounts-table"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("t", "test_account", "Test"),
        Key("r", "rotate_account", "New token"),
        Key("x", "remove_account", "Remove"),
        Key("c", "connect_account", "Connect"),
    )

    def __init__(self) -> None:
        super().__init__()
        self.views: list[AccountView] = []
        self.units: list[Unit] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(_("Channel accounts"), classes="pane-title")
        table: DataTable[str | Text] = DataTable(id="accounts-table", cursor_type="row")
        table.add_column(_("Unit"), width=7)
        table.add_column(_("Channel"), width=5)
        table.add_column(_("Account"), width=20)
        table.add_column(_("Status"), width=16)
        table.add_column(_("Token expires"), width=30)
        table.add_column(_("Last check"), width=17)
        table.add_column(_("Source"), width=9)
        yield table
        yield Static("", id="account-detail")
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user, now = self.publisher.user, self.publisher.now()

        def read() -> tuple[list[AccountView], list[Unit]]:
            return self.backend.accounts(user, now), self.backend.units(user)

        self.views, self.units = await self.fetch(read)
        self.show()

    def show(self) -> None:
        table = self.query_one("#accounts-table", DataTable)
        row = table.cursor_row
        table.clear()
        warn = self.publisher.settings.expiry_warning_days
        for view in self.views:
            account = view.account
            expiry = Text(formatting.when(account.token_expires_at))
            if view.expires_in_days is not None and account.status is not AccountStatus.DISABLED:
                if view.expires_in_days < 0:
                    expiry.append(f" ({_('expired')})", style="bold red")
                elif view.expiring(warn):
                    days = int(view.expires_in_days)
                    expiry.append(f" ({_('{n} d left').format(n=days)})")
                    expiry.stylize("bold yellow")
            table.add_row(
                account.unit_code,
                formatting.PLATFORM_SHORT.get(account.platform.value, account.platform.value),
                account.id,
                status_label(account.status),
                expiry,
                formatting.when(view.checked_at),
                origin_label(view.origin),
                key=account.id,
            )
        if self.views:
            table.move_cursor(row=min(max(row, 0), len(self.views) - 1))
        self.show_detail()

    def current(self) -> AccountView | None:
        table = self.query_one("#accounts-table", DataTable)
        if not self.views or table.cursor_row < 0:
            return None
        return self.views[min(table.cursor_row, len(self.views) - 1)]

    @on(DataTable.RowHighlighted, "#accounts-table")
    def show_detail(self) -> None:
        view = self.current()
        detail = self.query_one("#account-detail", Static)
        if view is None:
            detail.update(_("No channel account in your units."))
            return
        account = view.account
        lines = [f"{account.display_name or account.id} · {view.unit_name} · {account.external_id}"]
        if view.check_detail:
            lines.append(f"{_('Last check')}: {view.check_detail}")
        if view.status_reason and account.status is not AccountStatus.ACTIVE:
            lines.append(f"{_('Reason')}: {view.status_reason}")
        detail.update("\n".join(lines))

    # --- actions -------------------------------------------------------------------------

    def _act(self, action: Callable[[], R], tell: Callable[[R], tuple[str, str]]) -> None:
        """Run an account action in a worker; say what came of it, or why not."""

        async def run() -> None:
            try:
                result = await asyncio.to_thread(action)
            except ActionRefused as refused:
                self.publisher.refuse(refused.reason)
                return
            message, severity = tell(result)
            self.notify(message, severity=severity, timeout=8)  # type: ignore[arg-type]
            self.reload()

        self.run_worker(run(), group="decide")

    def _checked(self, outcome: CheckOutcome) -> tuple[str, str]:
        if outcome.verdict == "refused":
            return (
                _(
                    "{account}: the platform refused the token ({detail}). Nothing is sent "
                    "until a new token is set."
                ).format(account=outcome.account_id, detail=outcome.detail),
                "error",
            )
        if outcome.verdict == "unavailable":
            return (
                _("{account}: could not ask the platform ({detail}); nothing changed.").format(
                    account=outcome.account_id, detail=outcome.detail
                ),
                "warning",
            )
        message = _("{account}: the platform accepts the token.").format(account=outcome.account_id)
        if outcome.reactivated:
            message += " " + _("Active again: {n} waiting deliveries will go out.").format(
                n=outcome.held_deliveries
            )
        return message, "information"

    def action_test_account(self) -> None:
        view = self.current()
        if view is None:
            return self.no_selection()
        user = self.publisher.user
        self.notify(_("Asking the platform…"), timeout=3)
        self._act(partial(self.backend.test_account, user, view.account.id), self._checked)
        return None

    def action_rotate_account(self) -> None:
        view = self.current()
        if view is None:
            return self.no_selection()
        user, account_id = self.publisher.user, view.account.id

        def tell(outcome: CheckOutcome) -> tuple[str, str]:
            message, severity = self._checked(outcome)
            return _("New token stored.") + " " + message, severity

        def typed(secret: str | None) -> None:
            if secret:
                self._act(partial(self.backend.rotate_account, user, account_id, secret), tell)

        self.app.push_screen(
            PromptDialog(
                _("New token for {account}").format(account=account_id),
                hint=_("The platform checks it first; the old token stays if it is refused."),
                check=required,
                password=True,
            ),
            typed,
        )
        return None

    def action_remove_account(self) -> None:
        view = self.current()
        if view is None:
            return self.no_selection()
        user, account_id = self.publisher.user, view.account.id

        def tell(outcome: RemoveOutcome) -> tuple[str, str]:
            message = _("{account} removed: {n} unsent deliveries cancelled.").format(
                account=outcome.account_id, n=outcome.cancelled
            )
            if outcome.origin == "config":
                message += " " + _("Also delete it from accounts.toml.")
            return message, "information"

        def confirmed(reason: str | None) -> None:
            if reason:
                self._act(partial(self.backend.remove_account, user, account_id, reason), tell)

        self.app.push_screen(
            PromptDialog(
                _("Remove {account}: why?").format(account=account_id),
                hint=_(
                    "The account is disabled and its token deleted; deliveries not yet sent "
                    "are cancelled. Sent posts stay in the history."
                ),
                check=required,
            ),
            confirmed,
        )
        return None

    def action_connect_account(self) -> None:
        user = self.publisher.user
        if not self.units:
            return self.no_selection()

        def tell(outcome: CheckOutcome) -> tuple[str, str]:
            return _("Connected: {account}.").format(account=outcome.account_id), "information"

        def filled(form: ConnectForm | None) -> None:
            if form is not None:
                self._act(
                    partial(self.backend.connect_account, user, form.request, form.secret), tell
                )

        self.app.push_screen(ConnectDialog(self.units), filled)
        return None
