"""Fixtures for the channel tests live in `sandbox_helpers` (importable by name)."""

from __future__ import annotations

from sandbox_helpers import channels, http, sandbox

__all__ = ["channels", "http", "sandbox"]
