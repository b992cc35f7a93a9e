"""Each screen's main path, driven by the keyboard as an editor would."""

from __future__ import annotations

import html
import io
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from textual.widgets import DataTable, Input, TabbedContent
from tui_fakes import ADMIN, APPROVER_HN, EDITOR_HN, NOW, FakeBackend, build, settle

from publisher.domain import PauseScope, PostState
from tui import i18n
from tui.screens.audit import AuditScreen
from tui.screens.calendar import CalendarScreen
from tui.screens.coverage import CoverageScreen
from tui.screens.pause_dialog import PauseDialog
from tui.screens.plan import PlanScreen
from tui.screens.post import PostScreen
from tui.screens.problems import ProblemsScreen
from tui.screens.units import UnitsScreen
from tui.widgets.channel_preview import ChannelPreviewView


async def test_post_screen_shows_each_channel_and_edits_the_lead_in(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PostScreen)
        tabs = screen.query_one("#channel-tabs", TabbedContent)
        assert tabs.tab_count == len(screen.detail.deliveries) > 0
        await pilot.press("e")
        await settle(pilot)
        app.screen.query_one("#dialog-input", Input).value = "Tin Hà Nội:"
        await pilot.press("enter")
        await settle(pilot)
        assert fake.posts[screen.post_id].lead_in == "Tin Hà Nội:"
        assert screen.previews[0].text.startswith("Tin Hà Nội:")
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, PostScreen)


async def test_pause_and_resume_a_unit(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, UnitsScreen)
        await pilot.press("down")  # the first unit under the root: 01
        await settle(pilot)
        assert app.screen.selected == "01"
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PauseDialog)
        await pilot.press(*"Sự cố an ninh")
        await pilot.press("enter")
        await settle(pilot)
        assert ("pause", (PauseScope.SUBTREE, "01", "Sự cố an ninh", None)) in fake.calls
        units = app.screen
        assert isinstance(units, UnitsScreen)
        mine = next(p for p in units.pause_rows if p.target == "01")
        pauses = units.query_one("#pause-list", DataTable)
        pauses.focus()
        pauses.move_cursor(row=units.pause_rows.index(mine))
        await pilot.press("u")
        await settle(pilot)
        await pilot.press(*"Đã xử lý")
        await pilot.press("enter")
        await settle(pilot)
        assert ("resume", (mine.id, "Đã xử lý")) in fake.calls


async def test_expiring_token_is_highlighted(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        table = app.screen.query_one("#account-table", DataTable)
        cells = [str(table.get_row_at(i)[4]) for i in range(table.row_count)]
        assert any("còn 5 ngày" in c for c in cells), cells


async def test_retry_a_failed_delivery(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, ProblemsScreen)
        failed = app.screen.page.items[0]
        await pilot.press("t")
        await settle(pilot)
        assert ("retry", failed.id) in fake.calls
        assert fake.deliveries[failed.id].state == "pending"
        assert app.screen.page.total == 0


async def test_audit_filter(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("a")  # one approval to find in the trail
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        # Only events of Hà Nội's units: the pause of unit 79 is not theirs to see.
        assert [e.action for e in app.screen.page.items] == ["approve", "edit"]
        await pilot.press("slash", *"approve")
        await settle(pilot)
        assert [e.action for e in app.screen.page.items] == ["approve"]


async def test_audit_is_scoped_to_the_users_units(fake: FakeBackend) -> None:
    hanoi = fake.audit(APPROVER_HN, "", 0, 50)
    everyone = fake.audit(ADMIN, "", 0, 50)
    edited = fake.events[-1].target
    assert [e.target for e in hanoi.items] == [edited]
    assert [e.target for e in everyone.items] == [edited, "unit:79"]
    app = build(fake, user=ADMIN)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        assert [e.target for e in app.screen.page.items] == [edited, "unit:79"]


async def test_calendar_moves_a_post_one_hour_later(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CalendarScreen)
        grid = screen.query_one("#calendar-grid", DataTable)
        (row_key, slot), entries = next(iter(screen.cells.items()))
        grid.cursor_coordinate = grid.cursor_coordinate._replace(
            row=screen.row_keys.index(row_key), column=slot + 1
        )
        before = entries[0].due_at
        await pilot.press("plus")
        await settle(pilot)
        assert fake.posts[entries[0].post_id].scheduled_at == before.replace(hour=before.hour + 1)
        await pilot.press("w")
        await settle(pilot)
        assert len(grid.columns) == 8


async def test_coverage_matrix_for_a_directive(fake: FakeBackend) -> None:
    app = build(fake, user=ADMIN)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CoverageScreen)
        assert screen.report is not None
        table = screen.query_one("#coverage-table", DataTable)
        assert table.row_count == len(screen.report.units) > 0


async def test_plan_import_shows_errors_then_saves(fake: FakeBackend, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("article,unit,channels,time\n1,01,facebook,32/11/2026 09:00\n", encoding="utf-8")
    good = tmp_path / "good.csv"
    good.write_text("article,unit,channels,time\n1,01,facebook zalo,15/11/2026 09:00\n", "utf-8")
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("f7")
        await settle(pilot)
        assert isinstance(app.screen, PlanScreen)
        field = app.screen.query_one("#plan-path", Input)
        field.value = str(bad)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.result is not None
        assert not app.screen.result.ok
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not any(c[0] == "import_plan" for c in fake.calls)
        field.value = str(good)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert ("import_plan", 1) in fake.calls


async def test_switch_to_english_and_back(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        assert "Tiêu đề" in [str(c.label) for c in table.columns.values()]
        await pilot.press("f9")
        await settle(pilot)
        assert i18n.language() == "en"
        table = app.screen.query_one("#queue-table", DataTable)
        assert "Title" in [str(c.label) for c in table.columns.values()]
        await pilot.press("f9")
        await settle(pilot)
        assert i18n.language() == "vi"


def test_now_is_fixed() -> None:
    assert NOW.tzinfo is not None
    assert PostState.APPROVED.value == "approved"


def test_vietnamese_catalog_is_complete() -> None:
    from tui.i18n.extract import missing

    assert missing("vi") == []


def test_catalog_round_trips_through_gettext() -> None:
    translations = i18n.load("vi")
    assert translations.gettext("Approve") == "Duyệt"
    assert translations.gettext("not in the catalog") == "not in the catalog"


async def test_recall_a_post_from_the_post_screen(fake: FakeBackend) -> None:
    app = build(fake)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PostScreen)
        post_id = screen.post_id
        sent = screen.detail.deliveries[0]
        fake.deliveries[sent.id] = replace(sent, state="sent", remote_url="https://fb/p1")
        await pilot.press("t")
        await settle(pilot)
        app.screen.query_one("#dialog-input", Input).value = "Ban hành nhầm"
        await pilot.press("enter")
        await settle(pilot)
        app.screen.query_one("#dialog-input", Input).value = "Tin đã được thu hồi"
        await pilot.press("enter")
        await settle(pilot)
        # The confirmation wants the post's number typed back: a wrong one is refused.
        app.screen.query_one("#dialog-input", Input).value = "999999"
        await pilot.press("enter")
        await settle(pilot)
        assert not any(call[0] == "recall" for call in fake.calls)
        app.screen.query_one("#dialog-input", Input).value = str(post_id)
        await pilot.press("enter")
        await settle(pilot)
        assert ("recall", (post_id, "Ban hành nhầm", "Tin đã được thu hồi")) in fake.calls
        assert app.screen is screen
        assert fake.posts[post_id].state is PostState.RECALLED
        states = {w.delivery_id: w.state for w in screen.detail.withdrawals}
        assert states[sent.id] == "pending"
        assert set(states.values()) <= {"pending", "not_sent"}
        shown = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "Thu hồi: đang gỡ bài khỏi mọi kênh" in shown
        assert "Đang chờ gỡ" in shown  # pending, in Vietnamese


async def test_recall_is_refused_for_an_editor(fake: FakeBackend) -> None:
    app = build(fake, EDITOR_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PostScreen)
        await pilot.press("t")
        await settle(pilot)
        app.screen.query_one("#dialog-input", Input).value = "nhầm"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("enter")  # no notice
        await settle(pilot)
        app.screen.query_one("#dialog-input", Input).value = str(screen.post_id)
        await pilot.press("enter")
        await settle(pilot)
        assert not any(call[0] == "recall" for call in fake.calls)
        assert fake.posts[screen.post_id].state is not PostState.RECALLED


def _text_of(view: ChannelPreviewView) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(view.content)
    return console.export_text()


async def test_a_telegram_album_is_shown_photo_by_photo(fake: FakeBackend) -> None:
    """The post screen's Telegram tab shows an album of four as 1/4 with the first photo's
    address; `.` and `,` step through it (round the ends); other channels show one image."""
    photos = tuple(f"https://baochinhphu.vn/anh-{n}.jpg" for n in range(1, 5))
    post_id = next(p.id for p in fake.posts.values() if p.unit_code == "CP")
    assert post_id is not None
    article_id = fake.posts[post_id].article_id
    fake.articles[article_id] = replace(fake.articles[article_id], images=photos)
    app = build(fake, ADMIN)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.push_screen(PostScreen(post_id))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PostScreen)
        tabs = screen.query_one("#channel-tabs", TabbedContent)
        platforms = [p.platform for p in screen.previews]
        tabs.active = f"pane-{platforms.index('telegram')}"
        await settle(pilot)
        view = tabs.get_pane(tabs.active).query_one(ChannelPreviewView)
        first = _text_of(view)
        assert "Album: 4 ảnh  ■ □ □ □  1/4" in first
        assert f"Ảnh 1/4: {photos[0]}" in first
        await pilot.press("full_stop")
        await settle(pilot)
        assert f"Ảnh 2/4: {photos[1]}" in _text_of(view)
        assert "□ ■ □ □  2/4" in _text_of(view)
        await pilot.press("comma", "comma")
        await settle(pilot)
        assert f"Ảnh 4/4: {photos[3]}" in _text_of(view)  # before the first: the last
        # Facebook posts one image: no album, no stepping.
        tabs.active = f"pane-{platforms.index('facebook')}"
        await settle(pilot)
        facebook = tabs.get_pane(tabs.active).query_one(ChannelPreviewView)
        await pilot.press("full_stop")
        await settle(pilot)
        text = _text_of(facebook)
        assert "Album" not in text
        assert f"Ảnh: {photos[0]}" in text
