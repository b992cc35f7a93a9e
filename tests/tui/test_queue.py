"""Hàng chờ: an approver sees their units' posts and decides with the keyboard."""

from __future__ import annotations

from textual.widgets import DataTable, Input
from tui_fakes import EDITOR_HN, FakeBackend, build, settle

from publisher.domain import PostState
from tui.screens.prompt import PromptDialog
from tui.screens.queue import QueueScreen


def rows(app) -> list[str]:
    table = app.screen.query_one("#queue-table", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


async def test_queue_shows_only_my_units(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, QueueScreen)
        shown = {fake.posts[int(r)].unit_code for r in rows(app)}
        assert shown <= {"01", "01001"}
        assert shown


async def test_approve_with_a_key(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first = int(rows(app)[0])
        assert fake.posts[first].state is PostState.AWAITING_APPROVAL
        await pilot.press("a")
        await settle(pilot)
        assert fake.posts[first].state is PostState.APPROVED
        assert ("approve", (first,)) in fake.calls


async def test_reject_asks_for_a_reason(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first = int(rows(app)[0])
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        await pilot.press("enter")  # empty reason: refused by the dialog itself
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        await pilot.press(*"Sai số liệu")
        await pilot.press("enter")
        await settle(pilot)
        assert fake.posts[first].state is PostState.REJECTED
        assert fake.reasons[first] == "Sai số liệu"


async def test_edit_lead_in(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first = int(rows(app)[0])
        await pilot.press("e")
        await settle(pilot)
        await pilot.press(*"Hà Nội thông tin:")
        await pilot.press("enter")
        await settle(pilot)
        assert fake.posts[first].lead_in == "Hà Nội thông tin:"


async def test_reschedule_checks_the_time(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first = int(rows(app)[0])
        await pilot.press("s")
        await settle(pilot)
        field = app.screen.query_one("#dialog-input", Input)
        field.value = "31/02/2026 25:00"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)  # refused: still asking
        field.value = "15/11/2026 20:30"
        await pilot.press("enter")
        await settle(pilot)
        moved = fake.posts[first].scheduled_at
        assert moved is not None
        assert moved.isoformat() == "2026-11-15T13:30:00+00:00"


async def test_bulk_approve_a_selection(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first, second = (int(r) for r in rows(app)[:2])
        await pilot.press("space", "space")
        await pilot.press("A")
        await settle(pilot)
        assert fake.posts[first].state is PostState.APPROVED
        assert fake.posts[second].state is PostState.APPROVED


async def test_refused_action_says_why(fake: FakeBackend) -> None:
    app = build(fake, user=EDITOR_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        first = int(rows(app)[0])
        await pilot.press("a")
        await settle(pilot)
        assert fake.posts[first].state is PostState.AWAITING_APPROVAL
        messages = [n.message for n in app._notifications]
        assert any("không có quyền" in m for m in messages)


async def test_filter_by_state(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        from publisher.views import QueueFilter
        from tui.widgets.filter_bar import FilterBar

        screen.post_message(FilterBar.Changed(QueueFilter(state="approved")))
        await settle(pilot)
        assert all(fake.posts[int(r)].state is PostState.APPROVED for r in rows(app))
        assert rows(app)
