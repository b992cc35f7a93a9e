"""The core never imports Textual: the TUI is one client of the core among others."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import publisher


def test_core_does_not_import_textual() -> None:
    modules = [m.name for m in pkgutil.walk_packages(publisher.__path__, "publisher.")]
    assert "publisher.cli" in modules
    core = [m for m in modules if not m.startswith("publisher.cli")]
    code = (
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules\n"
        "             if m == 'textual' or m.startswith(('textual.', 'tui')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"the core imported: {result.stdout.strip()}"


def test_network_guard_refuses_real_addresses() -> None:
    import socket

    import pytest

    with socket.socket() as sock, pytest.raises(RuntimeError, match="real network"):
        sock.connect(("93.184.216.34", 80))
