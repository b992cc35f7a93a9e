"""What every data screen shares: translated keys, polling, and work off the UI thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.screen import Screen

from tui import i18n
from tui.i18n import _
from tui.keys import Key, apply_keys
from tui.ports import ActionRefused, Backend

if TYPE_CHECKING:
    from tui.app import PublisherApp

R = TypeVar("R")


class DataScreen(Screen[None]):
    """A screen that shows what the core says and reloads it on a timer."""

    KEYS: ClassVar[tuple[Key, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._language = i18n.language()
        apply_keys(self, self.KEYS)

    @property
    def publisher(self) -> PublisherApp:
        return cast("PublisherApp", self.app)

    @property
    def backend(self) -> Backend:
        return self.publisher.backend

    def on_mount(self) -> None:
        self.reload()
        seconds = self.publisher.settings.poll_seconds
        if seconds > 0:
            self.set_interval(seconds, self.poll)

    async def on_screen_resume(self) -> None:
        if self._language != i18n.language():
            await self.relabel()
        else:
            self.reload()

    async def relabel(self) -> None:
        """Rebuild labels in the current language (the data is loaded again)."""
        self._language = i18n.language()
        apply_keys(self, self.KEYS)
        await self.recompose()
        self.reload()

    def reload(self) -> None:
        """Ask the core for this screen's data (in a worker) and show it."""

    def poll(self) -> None:
        if self.is_current:
            self.reload()

    async def fetch(self, read: Callable[[], R]) -> R:
        """Run a read off the UI thread, so a slow database never freezes the screen."""
        return await asyncio.to_thread(read)

    def decide(self, done: str, action: Callable[[], Any]) -> None:
        """Send a decision to the core in a worker; say what happened, or why not."""
        self.run_worker(self._decide(done, action), group="decide")

    async def _decide(self, done: str, action: Callable[[], Any]) -> None:
        try:
            await asyncio.to_thread(action)
        except ActionRefused as refused:
            self.publisher.refuse(refused.reason)
            return
        self.notify(done, timeout=4)
        self.reload()

    def no_selection(self) -> None:
        self.notify(_("Nothing selected."), severity="warning", timeout=3)
