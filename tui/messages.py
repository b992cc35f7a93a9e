"""App-wide messages (widget messages live on their widgets)."""

from __future__ import annotations

from textual.message import Message


class DataChanged(Message):
    """Something was decided: every screen showing data should reload."""


class LanguageChanged(Message):
    """The language switched: screens rebuild their labels."""
