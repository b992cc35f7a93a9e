"""The directory store's contract, run on the in-memory, SQLite and PostgreSQL implementations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.domain import (
    AccountStatus,
    ChannelAccount,
    Platform,
    Role,
    RoleGrant,
    Source,
    SourceKind,
    Unit,
    User,
    WithdrawalState,
)
from publisher.store.engine import make_engine, upgrade
from publisher.store.memory import MemoryRepository
from publisher.store.repository import Repository, UnknownUnitError
from publisher.store.sql import SqlRepository


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    if request.param == "memory":
        yield MemoryRepository()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = make_engine(url)
    yield SqlRepository(engine)
    engine.dispose()


TREE = [
    Unit("CP", "Cổng TTĐT Chính phủ", "central"),
    Unit("01", "Thành phố Hà Nội", "province", "CP", "QD19/2025"),
    Unit("79", "Thành phố Hồ Chí Minh", "province", "CP", "QD19/2025"),
    Unit("S01001", "Phường Hoàn Kiếm", "commune", "01", "sample"),
    Unit("S01002", "Phường Ba Đình", "commune", "01", "sample"),
    Unit("S01001.1", "Trang thành phần", "site", "S01001"),
]


def test_subtree_reaches_every_depth_and_nothing_else(repo: Repository) -> None:
    repo.upsert_units(reversed(TREE))  # children before parents must still work
    assert repo.subtree_codes("01") == ["01", "S01001", "S01001.1", "S01002"]
    assert repo.subtree_codes("79") == ["79"]
    assert set(repo.subtree_codes("CP")) == {u.code for u in TREE}
    assert repo.ancestors("S01001.1") == ["S01001", "01", "CP"]
    with pytest.raises(UnknownUnitError):
        repo.subtree_codes("99")


def test_unit_keeps_its_code_list_and_can_be_renamed(repo: Repository) -> None:
    repo.upsert_units(TREE)
    repo.rename_unit("S01002", "Phường Ba Đình mới", short_name="Ba Đình")
    unit = repo.get_unit("S01002")
    assert unit is not None
    assert (unit.name, unit.short_name, unit.code_list) == (
        "Phường Ba Đình mới",
        "Ba Đình",
        "sample",
    )
    assert repo.get_unit("01") == TREE[1]


def test_merge_moves_children_and_accounts_and_keeps_the_old_unit(repo: Repository) -> None:
    repo.upsert_units(TREE)
    account = ChannelAccount("S01002.zalo", "S01002", Platform.ZALO, "4000")
    repo.upsert_accounts([account])
    repo.merge_units("S01001", into="S01002")
    assert repo.subtree_codes("S01002") == ["S01002", "S01001.1"]
    old = repo.get_unit("S01001")
    assert old is not None
    assert (old.active, old.merged_into) == (False, "S01002")
    assert repo.list_accounts(["S01002"]) == [account]
    with pytest.raises(ValueError, match="descendant"):
        repo.merge_units("01", into="S01002")


def test_users_with_grants_and_os_mapping(repo: Repository) -> None:
    repo.upsert_units(TREE)
    user = User(
        "duyet.hanoi",
        "Duyệt Hà Nội",
        grants=(RoleGrant("01", Role.APPROVER), RoleGrant("S01001", Role.EDITOR, subtree=False)),
        os_users=("hanoi",),
    )
    repo.upsert_users([user])
    assert repo.get_user("duyet.hanoi") == user
    assert repo.user_for_os_account("hanoi") == user
    assert repo.user_for_os_account("nobody") is None
    changed = User("duyet.hanoi", "Duyệt", grants=(RoleGrant("79", Role.ADMIN),))
    repo.upsert_users([changed])
    assert repo.get_user("duyet.hanoi") == changed


def test_accounts_keep_status_and_aware_expiry(repo: Repository) -> None:
    repo.upsert_units(TREE)
    expiry = datetime(2027, 1, 15, 17, 0, tzinfo=UTC)
    account = ChannelAccount(
        "01.facebook",
        "01",
        Platform.FACEBOOK,
        "1001",
        "Cổng Hà Nội",
        "store:",
        expiry,
        language="vi",
    )
    repo.upsert_accounts([account])
    repo.set_account_status("01.facebook", AccountStatus.AUTH_FAILED, "token revoked")
    stored = repo.get_account("01.facebook")
    assert stored is not None
    assert stored.status is AccountStatus.AUTH_FAILED
    assert stored.token_expires_at == expiry
    assert stored.token_expires_at.tzinfo is not None
    repo.upsert_accounts([account])  # reloading configuration must not clear the failure
    stored = repo.get_account("01.facebook")
    assert stored is not None
    assert stored.status is AccountStatus.AUTH_FAILED


def test_sources_round_trip(repo: Repository) -> None:
    repo.upsert_units(TREE)
    source = Source(
        "hn", "01", SourceKind.PAGE, "https://hanoi.gov.vn/tin", selectors={"item": ".news"}
    )
    repo.upsert_sources([source])
    assert repo.get_source("hn") == source
    assert repo.list_sources() == [source]


def test_status_counts_every_state_even_when_zero(repo: Repository) -> None:
    counts = repo.status_counts().to_json()
    assert counts["articles"] == 0
    assert isinstance(counts["deliveries"], dict)
    assert set(counts["deliveries"]) >= {"pending", "sent", "unknown", "needs_review", "expired"}
    assert all(v == 0 for v in counts["deliveries"].values())
    assert counts["withdrawals"] == {state.value: 0 for state in WithdrawalState}
