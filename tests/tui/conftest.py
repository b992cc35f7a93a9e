"""Shared fixtures for the TUI tests: a fake core, a fixed clock, a still cursor."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input
from tui_fakes import FakeBackend

from tui import i18n


@pytest.fixture(autouse=True)
def _still_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes snapshots flaky: keep it still."""
    original = Input.__init__

    def still(self: Input, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cursor_blink = False

    monkeypatch.setattr(Input, "__init__", still)


@pytest.fixture(autouse=True)
def _vietnamese() -> Any:
    i18n.set_language("vi")
    yield
    i18n.set_language("vi")


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend.sample()
