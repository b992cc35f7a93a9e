"""How each screen looks at 120×36, in Vietnamese (pytest-textual-snapshot)."""

from __future__ import annotations

from typing import Any

import pytest
from tui_fakes import ADMIN, FakeBackend, build, settle

SIZE = (120, 36)


def before(*keys: str) -> Any:
    async def run(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("queue", ()),
        ("post", ("enter",)),
        ("calendar", ("f2",)),
        ("units", ("f3", "down")),
        ("problems", ("f5",)),
        ("audit", ("f6",)),
        ("plan", ("f7",)),
        ("reject_dialog", ("r",)),
    ],
)
def test_screen_looks_right(snap_compare: Any, name: str, keys: tuple[str, ...]) -> None:
    del name
    assert snap_compare(build(FakeBackend.sample()), terminal_size=SIZE, run_before=before(*keys))


def test_coverage_looks_right(snap_compare: Any) -> None:
    app = build(FakeBackend.sample(), user=ADMIN)
    assert snap_compare(app, terminal_size=SIZE, run_before=before("f4"))


def test_queue_in_english_looks_right(snap_compare: Any) -> None:
    app = build(FakeBackend.sample(), language="en")
    assert snap_compare(app, terminal_size=SIZE, run_before=before())
