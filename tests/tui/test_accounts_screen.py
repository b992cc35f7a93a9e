"""Tài khoản kênh / Channel accounts (F8): an admin tests, rotates, removes and connects the
accounts of their units; everyone else is told why not; a typed token is never shown."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, Select
from tui_fakes import ADMIN_HN, APPROVER_HN, NOW, FakeBackend, build, settle

from publisher.domain import AccountStatus
from tui.screens.accounts import AccountsScreen, ConnectDialog
from tui.screens.prompt import PromptDialog

TOKEN = "EAAVerySecretPageToken1234567890"


async def open_accounts(pilot: Any) -> AccountsScreen:
    await settle(pilot)
    await pilot.press("f8")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AccountsScreen)
    return screen


def messages(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


def cursor_to(screen: AccountsScreen, account_id: str) -> None:
    ids = [v.account.id for v in screen.views]
    screen.query_one("#accounts-table", DataTable).move_cursor(row=ids.index(account_id))


async def test_the_screen_lists_the_accounts_in_reach(fake: FakeBackend) -> None:
    app = build(fake, user=ADMIN_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_accounts(pilot)
        assert {v.account.unit_code for v in screen.views} == {"01", "01001"}
        table = screen.query_one("#accounts-table", DataTable)
        assert table.row_count == 3
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[2] == "01.facebook"
        assert first[3] == "hoạt động"
        assert first[4].startswith("02/06/2027 09:00")  # 200 days on, in Hà Nội time


async def test_test_rotate_and_remove(fake: FakeBackend) -> None:
    app = build(fake, user=ADMIN_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_accounts(pilot)
        cursor_to(screen, "01.zalo")
        await pilot.press("t")
        await settle(pilot)
        assert ("test_account", "01.zalo") in fake.calls
        assert any("nền tảng chấp nhận token" in m for m in messages(app))
        assert fake.checked["01.zalo"] == NOW

        cursor_to(screen, "01.zalo")
        await pilot.press("r")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, PromptDialog)
        field = dialog.query_one("#dialog-input", Input)
        assert field.password
        await pilot.press(*TOKEN)
        await settle(pilot)
        assert TOKEN not in app.export_screenshot()  # typed masked
        await pilot.press("enter")
        await settle(pilot)
        assert fake.secrets["01.zalo"] == TOKEN
        assert TOKEN not in "\n".join(messages(app))

        before = {k: d.state for k, d in fake.deliveries.items() if d.account_id == "01.facebook"}
        assert "awaiting_approval" in before.values()
        assert "failed" in before.values()
        cursor_to(screen, "01.facebook")
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("enter")  # no reason: the dialog asks again
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        await pilot.press(*"Trang ngừng hoạt động")
        await pilot.press("enter")
        await settle(pilot)
        assert ("remove_account", ("01.facebook", "Trang ngừng hoạt động")) in fake.calls
        removed = next(a for a in fake.accounts_list if a.id == "01.facebook")
        assert removed.status is AccountStatus.DISABLED
        for key, state in before.items():
            wanted = "cancelled" if state == "awaiting_approval" else state  # failed: history
            assert fake.deliveries[key].state == wanted
        table = screen.query_one("#accounts-table", DataTable)
        row = [v.account.id for v in screen.views].index("01.facebook")
        assert str(table.get_row_at(row)[3]) == "đã gỡ"


async def test_a_refused_token_is_explained_and_the_old_one_kept(fake: FakeBackend) -> None:
    fake.secrets["01.zalo"] = "good"
    app = build(fake, user=ADMIN_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_accounts(pilot)
        cursor_to(screen, "01.zalo")
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"bad-token")
        await pilot.press("enter")
        await settle(pilot)
        assert fake.secrets["01.zalo"] == "good"
        assert any("old ones are kept" in m for m in messages(app))


async def test_connect_through_the_form(fake: FakeBackend) -> None:
    app = build(fake, user=ADMIN_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_accounts(pilot)
        await pilot.press("c")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConnectDialog)
        await pilot.press("enter")  # nothing chosen yet: the form says what is missing
        await settle(pilot)
        assert isinstance(app.screen, ConnectDialog)
        dialog.query_one("#connect-unit", Select).value = "01001"
        dialog.query_one("#connect-platform", Select).value = "telegram"
        dialog.query_one("#connect-external", Input).value = "@hoankiem"
        dialog.query_one("#connect-name", Input).value = "Phường Hoàn Kiếm"
        secret = dialog.query_one("#connect-secret", Input)
        assert secret.password
        secret.value = TOKEN
        secret.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert ("connect_account", ("01001.telegram.hoankiem", "01001")) in fake.calls
        screen = app.screen
        assert isinstance(screen, AccountsScreen)
        assert "01001.telegram.hoankiem" in [v.account.id for v in screen.views]
        assert any("Đã kết nối: 01001.telegram.hoankiem" in m for m in messages(app))
        assert TOKEN not in "\n".join(messages(app))


async def test_someone_who_is_not_an_admin_is_told_why_not(fake: FakeBackend) -> None:
    app = build(fake, user=APPROVER_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_accounts(pilot)
        cursor_to(screen, "01.zalo")
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*"gỡ")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, AccountsScreen)  # no traceback, still here
        refusals = [m for m in messages(app) if "không có quyền" in m]
        assert len(refusals) == 2
        assert not [c for c in fake.calls if c[0].endswith("_account")]
        assert next(a for a in fake.accounts_list if a.id == "01.zalo").status.value == "active"


async def test_the_screen_follows_the_language(fake: FakeBackend) -> None:
    app = build(fake, user=ADMIN_HN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_accounts(pilot)
        table = screen.query_one("#accounts-table", DataTable)
        assert "Kiểm tra lần cuối" in [str(c.label) for c in table.columns.values()]
        await pilot.press("f9")
        await settle(pilot)
        table = app.screen.query_one("#accounts-table", DataTable)
        assert "Last check" in [str(c.label) for c in table.columns.values()]
