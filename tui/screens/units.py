"""Đơn vị & kênh / Units and channels: the tree, accounts with token expiry, pauses."""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static, Tree
from textual.widgets.tree import TreeNode

from publisher.domain import AccountStatus, Pause, Unit
from publisher.views import AccountView
from tui import formatting
from tui.i18n import _
from tui.keys import Key
from tui.screens.base import DataScreen
from tui.screens.pause_dialog import PauseDialog, PauseRequest
from tui.screens.prompt import PromptDialog, required


def scope_label(pause: Pause) -> str:
    names = {
        "unit": _("unit"),
        "subtree": _("unit and below"),
        "channel": _("channel"),
        "account": _("account"),
        "all": _("everything"),
    }
    return f"{names.get(pause.scope.value, pause.scope.value)} {pause.target}".strip()


class UnitsScreen(DataScreen):
    AUTO_FOCUS = "#unit-tree"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("p", "pause", "Pause"),
        Key("u", "resume", "Resume"),
        Key("tab", "app.focus_next", "Next pane", show=False),
    )

    def __init__(self) -> None:
        super().__init__()
        self.units: list[Unit] = []
        self.account_views: list[AccountView] = []
        self.pause_rows: list[Pause] = []
        self.selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="units-body"):
            yield Tree(_("Units"), id="unit-tree")
            with Vertical(id="units-right"):
                yield Static(_("Channel accounts"), classes="pane-title")
                accounts: DataTable[str | Text] = DataTable(id="account-table", cursor_type="row")
                accounts.add_column(_("Unit"), width=8)
                accounts.add_column(_("Channel"), width=9)
                accounts.add_column(_("Account"), width=22)
                accounts.add_column(_("Status"), width=12)
                accounts.add_column(_("Token expires"), width=24)
                yield accounts
                yield Static(_("Pauses in force"), classes="pane-title")
                pauses: DataTable[str | Text] = DataTable(id="pause-list", cursor_type="row")
                pauses.add_column(_("Scope"), width=22)
                pauses.add_column(_("Reason"), width=30)
                pauses.add_column(_("By"), width=12)
                pauses.add_column(_("Until"), width=16)
                yield pauses
        yield Footer()

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        user, now = self.publisher.user, self.publisher.now()

        def read() -> tuple[list[Unit], list[AccountView], list[Pause]]:
            return (
                self.backend.units(user),
                self.backend.accounts(user, now),
                self.backend.pauses(now),
            )

        units, accounts, pauses = await self.fetch(read)
        self.account_views, self.pause_rows = accounts, pauses
        if [u.code for u in units] != [u.code for u in self.units]:
            self.units = units
            self.show_tree()
        self.show_accounts()
        self.show_pauses()

    def show_tree(self) -> None:
        tree: Tree[str] = self.query_one("#unit-tree", Tree)
        tree.clear()
        paused = {p.target for p in self.pause_rows}
        nodes: dict[str, TreeNode[str]] = {}
        codes = {u.code for u in self.units}
        for unit in self.units:  # parents come first (ordered by depth)
            parent = nodes.get(unit.parent_code) if unit.parent_code in codes else tree.root
            label = f"{unit.code} · {unit.short_name or unit.name}"
            if unit.code in paused:
                label += " ‖"
            node = (parent or tree.root).add(label, data=unit.code, expand=len(nodes) < 1)
            nodes[unit.code] = node
        tree.root.expand()

    def _subtree(self, code: str) -> set[str]:
        found = {code}
        for unit in self.units:  # ordered by depth: a child comes after its parent
            if unit.parent_code in found:
                found.add(unit.code)
        return found

    def show_accounts(self) -> None:
        table = self.query_one("#account-table", DataTable)
        table.clear()
        wanted = self._subtree(self.selected) if self.selected else None
        warn = self.publisher.settings.expiry_warning_days
        for view in self.account_views:
            account = view.account
            if wanted is not None and account.unit_code not in wanted:
                continue
            status = Text(
                {
                    AccountStatus.ACTIVE: _("active"),
                    AccountStatus.AUTH_FAILED: _("token refused"),
                    AccountStatus.DISABLED: _("disabled"),
                }[account.status],
                style="" if account.status is AccountStatus.ACTIVE else "bold red",
            )
            expiry = Text(formatting.when(account.token_expires_at))
            if view.expires_in_days is not None:
                days = int(view.expires_in_days)
                if view.expires_in_days < 0:
                    expiry.append(f" ({_('expired')})", style="bold red")
                elif view.expiring(warn):
                    expiry.append(f" ({_('{n} d left').format(n=days)})")
                    expiry.stylize("bold yellow")
            table.add_row(
                account.unit_code,
                formatting.PLATFORM_SHORT.get(account.platform.value, account.platform.value),
                account.display_name or account.id,
                status,
                expiry,
            )

    def show_pauses(self) -> None:
        table = self.query_one("#pause-list", DataTable)
        table.clear()
        for pause in self.pause_rows:
            table.add_row(
                scope_label(pause),
                pause.reason,
                pause.created_by,
                formatting.when(pause.until) if pause.until else _("until resumed"),
                key=str(pause.id),
            )

    @on(Tree.NodeHighlighted, "#unit-tree")
    def unit_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self.selected = event.node.data
        self.show_accounts()

    def action_pause(self) -> None:
        code = self.selected
        unit = next((u for u in self.units if u.code == code), None)
        if unit is None:
            return self.no_selection()
        user = self.publisher.user

        def chosen(request: PauseRequest | None) -> None:
            if request is not None:
                self.decide(
                    _("Paused: {what}.").format(what=f"{request.scope.value} {request.target}"),
                    partial(
                        self.backend.pause,
                        user,
                        request.scope,
                        request.target,
                        request.reason,
                        request.until,
                    ),
                )

        self.app.push_screen(PauseDialog(unit.code, unit.name, self.publisher.now()), chosen)
        return None

    def action_resume(self) -> None:
        table = self.query_one("#pause-list", DataTable)
        if not self.pause_rows or table.cursor_row < 0:
            return self.no_selection()
        pause = self.pause_rows[min(table.cursor_row, len(self.pause_rows) - 1)]
        user = self.publisher.user

        def confirmed(reason: str | None) -> None:
            if reason and pause.id is not None:
                self.decide(
                    _("Resumed: {what}.").format(what=scope_label(pause)),
                    partial(self.backend.resume, user, pause.id, reason),
                )

        self.app.push_screen(
            PromptDialog(_("Resume {what}: why?").format(what=scope_label(pause)), check=required),
            confirmed,
        )
        return None
