"""Placeholder until built."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import DataScreen


class UnitsScreen(DataScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("units")
        yield Footer()
