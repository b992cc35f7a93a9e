"""The platform sandbox: faithful emulators of every platform on one ASGI app (product code)."""

from __future__ import annotations

from channels.sandbox.app import make_app
from channels.sandbox.core import Fault, LedgerEntry, ReplyLost, SandboxSettings, SandboxState

__all__ = ["Fault", "LedgerEntry", "ReplyLost", "SandboxSettings", "SandboxState", "make_app"]
