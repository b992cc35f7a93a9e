"""Fixtures for the channel tests live in `sandbox_helpers` (importable by name)."""

from __future__ import annotations

from sandbox_helpers import channels, http, media, sandbox

__all__ = ["channels", "http", "media", "sandbox"]
