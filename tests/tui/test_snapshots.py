"""How each screen looks at 120×36, in Vietnamese (pytest-textual-snapshot)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tui_fakes import ADMIN, ADMIN_HN, NOW, FakeBackend, build, settle

from publisher.domain import AccountStatus

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


def test_channel_accounts_look_right(snap_compare: Any) -> None:
    fake = FakeBackend.sample()
    zalo = next(a for a in fake.accounts_list if a.id == "01.zalo")
    fake._replace_account(replace(zalo, status=AccountStatus.AUTH_FAILED))
    fake.origins["01.zalo"] = "connected"
    fake.checked["01.zalo"] = NOW
    app = build(fake, user=ADMIN_HN)
    assert snap_compare(app, terminal_size=SIZE, run_before=before("f8", "down"))


def test_connect_form_looks_right(snap_compare: Any) -> None:
    app = build(FakeBackend.sample(), user=ADMIN_HN)
    assert snap_compare(app, terminal_size=SIZE, run_before=before("f8", "c"))
