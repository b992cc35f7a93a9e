"""What every data screen shares: translated keys, polling, and work off the UI thread."""

from __future__ import annotations

import asyncio
import time
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
RESUME_RELOAD_AFTER_S = 1.0


class DataScreen(Screen[None]):
    """A screen that shows what the core says and reloads it on a timer."""

    KEYS: ClassVar[tuple[Key, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._language = i18n.language()
        self._shown_at = float("-inf")
        apply_keys(self, self.KEYS)

    @property
    def publisher(self) -> PublisherApp:
        return cast("PublisherApp", self.app)

    @property
    def backend(self) -> Backend:
        return self.publisher.backend

    def on_mount(self) -> None:
        self._shown_at = time.monotonic()
        self.reload()
        seconds = self.publisher.settings.poll_seconds
        if seconds > 0:
            self.set_interval(seconds, self.poll)

    async def on_screen_resume(self) -> None:
        if self._language != i18n.language():
            await self.relabel()
        elif time.monotonic() - self._shown_at > RESUME_RELOAD_AFTER_S:
            # Textual resumes a new screen right after mounting it (twice at start-up): the
            # data asked for at mount is still on its way.
            self._shown_at = time.monotonic()
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
