"""The editors' terminal UI: global keys and the screens, built by `make_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.screen import Screen

from publisher.domain import User
from tui import i18n
from tui.i18n import _
from tui.keys import Key, apply_keys
from tui.ports import Backend


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TuiSettings:
    user: User
    language: str = i18n.DEFAULT_LANGUAGE
    poll_seconds: float = 5.0  # how often screens ask the core for news (0: never)
    page_size: int = 50
    quiet_hours: tuple[int, int] = (22, 6)  # local hours [start, end) shown as quiet
    expiry_warning_days: float = 14.0
    clock: Callable[[], datetime] = _utc_now


SCREENS: dict[str, str] = {
    "queue": "tui.screens.queue:QueueScreen",
    "calendar": "tui.screens.calendar:CalendarScreen",
    "units": "tui.screens.units:UnitsScreen",
    "coverage": "tui.screens.coverage:CoverageScreen",
    "problems": "tui.screens.problems:ProblemsScreen",
    "audit": "tui.screens.audit:AuditScreen",
    "plan": "tui.screens.plan:PlanScreen",
    "accounts": "tui.screens.accounts:AccountsScreen",
}


def _screen_factory(dotted: str) -> Callable[[], Screen[Any]]:
    def build() -> Screen[Any]:
        import importlib

        module_name, class_name = dotted.split(":")
        cls: type[Screen[Any]] = getattr(importlib.import_module(module_name), class_name)
        return cls()

    return build


class PublisherApp(App[None]):
    CSS_PATH = Path(__file__).parent / "app.tcss"
    TITLE = "Publisher"
    KEYS: ClassVar[tuple[Key, ...]] = (
        Key("f1", "go('queue')", "Queue", key_display="F1"),
        Key("f2", "go('calendar')", "Calendar", key_display="F2"),
        Key("f3", "go('units')", "Units", key_display="F3"),
        Key("f4", "go('coverage')", "Coverage", key_display="F4"),
        Key("f5", "go('problems')", "Problems", key_display="F5"),
        Key("f6", "go('audit')", "Audit", key_display="F6"),
        Key("f7", "go('plan')", "Plan", key_display="F7"),
        Key("f8", "go('accounts')", "Accounts", key_display="F8"),
        Key("f9", "toggle_language", "English", key_display="F9"),
        Key("ctrl+q", "quit", "Quit", show=False, priority=True),
    )

    def __init__(self, settings: TuiSettings, backend: Backend) -> None:
        super().__init__()
        self.settings = settings
        self.backend = backend
        self.user = settings.user
        i18n.set_language(settings.language)
        for name, dotted in SCREENS.items():
            self.add_mode(name, _screen_factory(dotted))
        self._relabel()

    def now(self) -> datetime:
        return self.settings.clock()

    def _relabel(self) -> None:
        apply_keys(self, self._language_keys())
        self.title = _("Publisher")
        name = self.user.display_name or self.user.username
        self.sub_title = f"{name} ({self.user.username})"

    def _language_keys(self) -> tuple[Key, ...]:
        other = "English" if i18n.language() == "vi" else "Tiếng Việt"
        return tuple(
            k._replace(label=other) if k.action == "toggle_language" else k for k in self.KEYS
        )

    def on_mount(self) -> None:
        self.switch_mode("queue")

    def action_go(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    async def action_toggle_language(self) -> None:
        i18n.set_language("en" if i18n.language() == "vi" else "vi")
        self._relabel()
        await self.relabel_screen(self.screen)
        self.notify(_("Language switched"), timeout=2)

    async def relabel_screen(self, screen: Screen[Any]) -> None:
        relabel = getattr(screen, "relabel", None)
        if relabel is not None:
            await relabel()
        self.refresh_bindings()

    def refuse(self, reason: str) -> None:
        """Tell the person why the core said no."""
        self.notify(reason, title=_("Not allowed"), severity="error", timeout=8)


def make_app(settings: TuiSettings, backend: Backend) -> PublisherApp:
    """The app for one signed-in user; tests pass their own backend and clock."""
    return PublisherApp(settings, backend)
