"""Unit admins manage their own channel accounts (issue 12): who may, what is stored, what
is audited, and that no secret ever reaches output, logs or the database in plaintext."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from account_fakes import (
    ALL_SECRETS,
    AUTH_ERROR,
    BAD,
    DOWN,
    EXPIRES,
    GOOD,
    GOOD_2,
    NOW,
    SHORT_LIVED,
    TRADED,
    FakeChannel,
    add_deliveries,
    fake_channels,
)
from sec_helpers import SAMPLE_CONFIG, raw_database_bytes

from channels.base import Channel, Credentials
from channels.registry import load_channels
from channels.sandbox import make_app
from channels.telegram import TelegramChannel
from publisher.accounts import AccountService, CheckFailed, ConnectRequest, platform_steps
from publisher.audit import verify_database
from publisher.domain import AccountStatus, ChannelAccount, Platform, Role, RoleGrant, User
from publisher.secrets import Keyring, SecretStore, generate_key
from publisher.service import DeliveryService, NotFound, PermissionDenied, ServiceError
from publisher.settings import ConfigError, load_config
from publisher.store.engine import make_engine, upgrade
from publisher.store.sql import SqlRepository
from publisher.store.tables import AuditEventRow, ChannelAccountRow, DeliveryRow, table_of
from publisher.views import Views
from publisher.workspace import sync_directory
from tui.backend import CoreBackend
from tui.ports import ActionRefused

ACCOUNT = table_of(ChannelAccountRow)
AUDIT = table_of(AuditEventRow)
DELIVERY = table_of(DeliveryRow)

# An admin of Hà Nội (01) only, beside the sample's root admin and Quảng Ninh's admin (22).
HANOI_ADMIN = User("quantri.hanoi", "Quản trị Hà Nội", (RoleGrant("01", Role.ADMIN),))


@pytest.fixture
def world(
    sample_db: tuple[sa.Engine, SqlRepository, Path],
) -> tuple[AccountService, dict[str, FakeChannel], Path]:
    engine, repository, path = sample_db
    repository.upsert_users([HANOI_ADMIN])
    channels = fake_channels()
    secrets = SecretStore(engine, Keyring.from_texts([generate_key()], "test"))
    service = AccountService(engine, repository, secrets, channels, clock=lambda: NOW)
    return service, channels, path


def request(unit: str = "01", external: str = "@hanoi_news", **kw: Any) -> ConnectRequest:
    return ConnectRequest(unit, kw.pop("platform", "telegram"), external, "Tin Hà Nội", **kw)


def row(service: AccountService, account_id: str) -> Any:
    with service.engine.connect() as conn:
        return conn.execute(sa.select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()


def events(service: AccountService, action: str | None = None) -> list[Any]:
    with service.engine.connect() as conn:
        query = sa.select(AUDIT).order_by(AUDIT.c.seq)
        if action is not None:
            query = query.where(AUDIT.c.action == action)
        return list(conn.execute(query))


# --- who may ---------------------------------------------------------------------------------

# (user, unit, allowed): an admin reaches the unit and the units below it, never sideways or
# upward; editors and approvers never manage accounts.
REACH = [
    ("quantri.hanoi", "01", True),
    ("quantri.hanoi", "S01001", True),
    ("quantri.hanoi", "79", False),
    ("quantri.hanoi", "S79001", False),
    ("quantri.hanoi", "CP", False),
    ("quantri.quangninh", "22", True),
    ("quantri.quangninh", "01", False),
    ("quantri.quangninh", "S01001", False),
    ("admin", "S79001", True),
    ("admin", "01", True),
    ("duyet.hanoi", "01", False),  # approver of 01
    ("duyet.hanoi", "S01001", False),
    ("bientap.hanoi", "01", False),  # editor of 01
    ("duyet.hoankiem", "S01001", False),  # approver of the commune itself
]
ACCOUNT_OF = {
    "01": "01.facebook",
    "S01001": "S01001.facebook",
    "79": "79.facebook",
    "S79001": "S79001.facebook",
    "CP": "CP.facebook",
    "22": "22.facebook",
}


def assert_refusal_audited(service: AccountService, username: str, attempted: str, unit: str):
    [refused] = events(service, "refused")
    assert refused.actor == username
    assert refused.details["attempted"] == attempted
    assert refused.details["unit"] == unit
    assert verify_database(service.engine).ok


@pytest.mark.parametrize(("username", "unit", "allowed"), REACH)
async def test_connect_by_role_and_unit(world, username: str, unit: str, allowed: bool) -> None:
    service, channels, _ = world
    wanted = request(unit, f"@page_{unit}")
    if allowed:
        outcome = await service.connect(wanted, Credentials(GOOD), username)
        assert outcome.ok
        assert row(service, wanted.resolved_id()).origin == "connected"
        [event] = events(service, "account_connected")
        assert event.actor == username
        assert event.details["unit"] == unit
        return
    with pytest.raises(PermissionDenied):
        await service.connect(wanted, Credentials(GOOD), username)
    assert row(service, wanted.resolved_id()) is None
    assert channels["telegram"].checked == []  # refused before asking the platform
    assert_refusal_audited(service, username, "connect", unit)


@pytest.mark.parametrize(("username", "unit", "allowed"), REACH)
async def test_test_by_role_and_unit(world, username: str, unit: str, allowed: bool) -> None:
    service, _, _ = world
    account_id = ACCOUNT_OF[unit]
    service.secrets.put(account_id, Credentials(GOOD))
    if allowed:
        outcome = await service.test(account_id, username)
        assert outcome.ok
        assert outcome.expires_at == EXPIRES
        assert row(service, account_id).checked_at == NOW
        return
    before = row(service, account_id)
    with pytest.raises(PermissionDenied):
        await service.test(account_id, username)
    assert row(service, account_id) == before
    assert_refusal_audited(service, username, "test", unit)


@pytest.mark.parametrize(("username", "unit", "allowed"), REACH)
async def test_rotate_by_role_and_unit(world, username: str, unit: str, allowed: bool) -> None:
    service, _, _ = world
    account_id = ACCOUNT_OF[unit]
    service.secrets.put(account_id, Credentials(GOOD))
    if allowed:
        await service.rotate(account_id, Credentials(GOOD_2), username)
        assert service.secrets.get(account_id) == Credentials(GOOD_2)
        return
    with pytest.raises(PermissionDenied):
        await service.rotate(account_id, Credentials(GOOD_2), username)
    assert service.secrets.get(account_id) == Credentials(GOOD)
    assert_refusal_audited(service, username, "rotate", unit)


@pytest.mark.parametrize(("username", "unit", "allowed"), REACH)
def test_remove_by_role_and_unit(world, username: str, unit: str, allowed: bool) -> None:
    service, _, _ = world
    account_id = ACCOUNT_OF[unit]
    service.secrets.put(account_id, Credentials(GOOD))
    if allowed:
        service.remove(account_id, "trang ngừng hoạt động", username)
        assert row(service, account_id).status == "disabled"
        return
    with pytest.raises(PermissionDenied):
        service.remove(account_id, "trang ngừng hoạt động", username)
    assert row(service, account_id).status == "active"
    assert service.secrets.get(account_id) == Credentials(GOOD)
    assert_refusal_audited(service, username, "remove", unit)


def test_acting_for_someone_names_both_people(world) -> None:
    service, _, _ = world
    service.remove("01.viber", "thay kênh", "quantri.hanoi", actor_label="hotro as quantri.hanoi")
    [event] = events(service, "account_removed")
    assert event.actor == "hotro as quantri.hanoi"


# --- connect -----------------------------------------------------------------------------------


async def test_connect_stores_a_sealed_secret_and_the_platforms_answer(world) -> None:
    service, _, _ = world
    outcome = await service.connect(request(language="vi"), Credentials(GOOD), "quantri.hanoi")
    stored = row(service, "01.telegram.hanoi_news")
    assert outcome.account_id == "01.telegram.hanoi_news"
    assert stored.origin == "connected"
    assert stored.connected_by == "quantri.hanoi"
    assert stored.connected_at == NOW
    assert stored.checked_at == NOW
    assert stored.token_expires_at == EXPIRES
    assert stored.credentials_ref == "store:"
    assert stored.status == "active"
    assert stored.language == "vi"
    assert GOOD not in stored.secret_ciphertext
    assert service.secrets.get("01.telegram.hanoi_news") == Credentials(GOOD)
    [event] = events(service, "account_connected")
    assert event.details["key_id"] == stored.secret_key_id
    assert event.details["scopes"] == ["pages_manage_posts"]
    assert verify_database(service.engine).ok


async def test_traded_credentials_are_stored_instead_of_the_given_ones(world) -> None:
    service, _, _ = world
    await service.connect(request(platform="facebook"), Credentials(SHORT_LIVED), "admin")
    assert service.secrets.get("01.facebook.hanoi_news") == Credentials(TRADED, {"app_id": "123"})
    assert events(service, "account_connected")[0].details["traded"] is True


@pytest.mark.parametrize(
    ("token", "verdict"), [(BAD, "refused"), (AUTH_ERROR, "refused"), (DOWN, "unavailable")]
)
async def test_a_failed_check_stores_nothing(world, token: str, verdict: str) -> None:
    service, _, _ = world
    with pytest.raises(CheckFailed) as failed:
        await service.connect(request(), Credentials(token), "quantri.hanoi")
    assert failed.value.verdict == verdict
    assert "nothing was stored" in str(failed.value)
    assert token not in str(failed.value)  # the platform quoted it; we never do
    assert row(service, "01.telegram.hanoi_news") is None
    [event] = events(service, "account_connect_failed")
    assert event.details["verdict"] == verdict
    assert events(service, "account_connected") == []


async def test_duplicates_are_refused(world) -> None:
    service, _, _ = world
    with pytest.raises(ServiceError, match=r"already exists.*accounts\.toml"):
        await service.connect(request(account_id="01.facebook"), Credentials(GOOD), "admin")
    await service.connect(request(), Credentials(GOOD), "admin")
    with pytest.raises(ServiceError, match=r"already account 01\.telegram\.hanoi_news"):
        await service.connect(request("S01001", account_id="x.1"), Credentials(GOOD), "admin")
    # The sample's Hà Nội Telegram page, under a new id: one account per page.
    sample = row(service, "01.telegram")
    with pytest.raises(ServiceError, match=r"already account 01\.telegram "):
        await service.connect(
            request("01", sample.external_id, account_id="01.tg2"), Credentials(GOOD), "admin"
        )


async def test_a_removed_accounts_id_is_never_reused_but_its_page_may_be_connected_again(
    world,
) -> None:
    service, _, _ = world
    await service.connect(request(), Credentials(GOOD), "admin")
    service.remove("01.telegram.hanoi_news", "đổi quản trị", "admin")
    with pytest.raises(ServiceError, match=r"removed: ids are never reused"):
        await service.connect(request(), Credentials(GOOD), "admin")
    again = await service.connect(request(account_id="01.telegram.2"), Credentials(GOOD), "admin")
    assert again.ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"account_id": "bad id!"}, "--id"),
        ({"platform": "myspace"}, "--platform"),
        ({"external": ""}, "--external-id"),
        ({"language": "Vietnamese"}, "--language"),
    ],
)
async def test_bad_input_is_named(world, change: dict[str, Any], message: str) -> None:
    service, channels, _ = world
    external = change.pop("external", "@x")
    with pytest.raises(ServiceError, match=message):
        await service.connect(request("01", external, **change), Credentials(GOOD), "admin")
    assert channels["telegram"].checked == []


async def test_unknown_unit_and_user(world) -> None:
    service, _, _ = world
    with pytest.raises(NotFound, match=r"unknown unit"):
        await service.connect(request("99999"), Credentials(GOOD), "admin")
    with pytest.raises(NotFound, match=r"unknown user"):
        await service.connect(request(), Credentials(GOOD), "nobody")


async def test_no_master_key_refuses_before_asking_the_platform(world) -> None:
    service, channels, _ = world
    keyless = AccountService(
        service.engine, service.directory, SecretStore(service.engine, None), channels
    )
    with pytest.raises(ServiceError, match=r"no master key"):
        await keyless.connect(request(), Credentials(GOOD), "admin")
    assert channels["telegram"].checked == []


async def test_an_after_connect_step_runs_and_its_failure_stores_nothing(world) -> None:
    service, channels, _ = world
    called: list[tuple[str, str, str]] = []

    async def set_webhook(account: ChannelAccount, credentials: Credentials, url: str) -> None:
        called.append((account.id, credentials.token, url))

    channels["viber"].set_webhook = set_webhook  # type: ignore[attr-defined]
    service.after_connect = platform_steps("https://cong.example.vn/")
    await service.connect(request(platform="viber", external="pa:1"), Credentials(GOOD), "admin")
    assert called == [
        ("01.viber.pa:1", GOOD, "https://cong.example.vn/viber/webhook/01.viber.pa%3A1")
    ]
    del channels["viber"].set_webhook  # type: ignore[attr-defined]
    with pytest.raises(CheckFailed, match=r"set-up step failed.*nothing was stored"):
        await service.connect(
            request(platform="viber", external="pa:2"), Credentials(GOOD), "admin"
        )
    assert row(service, "01.viber.pa:2") is None


async def test_the_units_admins_see_its_account_events_and_others_do_not(world) -> None:
    service, _, _ = world
    await service.connect(request(), Credentials(GOOD), "quantri.hanoi")
    with pytest.raises(CheckFailed):
        await service.connect(request(external="@x"), Credentials(BAD), "quantri.hanoi")
    with pytest.raises(PermissionDenied):
        await service.connect(request("22", "@qn"), Credentials(GOOD), "quantri.hanoi")
    views = Views(service.engine)
    hanoi = {e.action for e in views.audit(HANOI_ADMIN).items}
    assert {"account_connected", "account_connect_failed"} <= hanoi
    quangninh = service.directory.get_user("quantri.quangninh")
    assert quangninh is not None
    seen = [(e.action, e.target) for e in views.audit(quangninh).items]
    assert seen == [("refused", "unit:22")]  # the attempt on their unit, nothing of Hà Nội's


# --- test --------------------------------------------------------------------------------------


async def test_a_working_token_brings_an_auth_failed_account_back_with_its_held_deliveries(
    world,
) -> None:
    service, _, _ = world
    service.secrets.put("01.zalo", Credentials(GOOD))
    add_deliveries(service.engine, "01.zalo", "01", ["pending", "retry_wait", "sent"])
    service.directory.set_account_status("01.zalo", AccountStatus.AUTH_FAILED, "token expired")
    outcome = await service.test("01.zalo", "quantri.hanoi")
    assert outcome.reactivated
    assert outcome.status == "active"
    assert outcome.held_deliveries == 2
    stored = row(service, "01.zalo")
    assert stored.status == "active"
    assert stored.status_reason is None
    assert stored.token_expires_at == EXPIRES
    [event] = events(service, "account_tested")
    assert event.details["status_before"] == "auth_failed"
    assert event.details["status_after"] == "active"


async def test_a_refused_token_stops_the_account(world) -> None:
    service, _, _ = world
    service.secrets.put("01.zalo", Credentials(BAD))
    outcome = await service.test("01.zalo", "quantri.hanoi")
    assert outcome.verdict == "refused"
    assert outcome.status == "auth_failed"
    stored = row(service, "01.zalo")
    assert stored.status == "auth_failed"
    assert "invalid token" in stored.status_reason
    assert BAD not in stored.status_reason
    assert BAD not in stored.check_detail


async def test_a_platform_that_cannot_be_asked_changes_no_status(world) -> None:
    service, _, _ = world
    service.secrets.put("01.zalo", Credentials(DOWN))
    outcome = await service.test("01.zalo", "quantri.hanoi")
    assert outcome.verdict == "unavailable"
    assert outcome.status == "active"
    assert row(service, "01.zalo").status == "active"
    assert events(service, "account_tested")[0].details["verdict"] == "unavailable"


async def test_a_removed_account_is_not_tested(world) -> None:
    service, channels, _ = world
    service.remove("01.zalo", "gỡ", "admin")
    with pytest.raises(ServiceError, match=r"was removed"):
        await service.test("01.zalo", "admin")
    assert channels["zalo"].checked == []


# --- rotate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [BAD, AUTH_ERROR, DOWN])
async def test_rotate_keeps_the_old_secret_when_the_new_one_fails(world, token: str) -> None:
    service, _, _ = world
    service.secrets.put("01.facebook", Credentials(GOOD))
    before = row(service, "01.facebook")
    with pytest.raises(CheckFailed, match=r"the old ones are kept"):
        await service.rotate("01.facebook", Credentials(token), "quantri.hanoi")
    after = row(service, "01.facebook")
    assert after.secret_ciphertext == before.secret_ciphertext
    assert service.secrets.get("01.facebook") == Credentials(GOOD)
    assert events(service, "account_rotate_failed")[0].details["unit"] == "01"


async def test_rotate_replaces_the_secret_and_reactivates(world) -> None:
    service, _, _ = world
    service.secrets.put("01.facebook", Credentials(BAD))
    service.directory.set_account_status("01.facebook", AccountStatus.AUTH_FAILED, "refused")
    outcome = await service.rotate("01.facebook", Credentials(GOOD_2), "quantri.hanoi")
    assert outcome.reactivated
    assert row(service, "01.facebook").status == "active"
    assert service.secrets.get("01.facebook") == Credentials(GOOD_2)
    assert row(service, "01.facebook").token_expires_at == EXPIRES
    [event] = events(service, "account_rotated")
    assert event.details["key_id"] == row(service, "01.facebook").secret_key_id


async def test_rotate_refuses_credentials_that_live_outside_the_database(world) -> None:
    service, _, _ = world
    with service.engine.begin() as conn:
        conn.execute(
            sa.update(ACCOUNT)
            .where(ACCOUNT.c.id == "01.viber")
            .values(credentials_ref="env:VIBER_01")
        )
    with pytest.raises(ServiceError, match=r"env:VIBER_01"):
        await service.rotate("01.viber", Credentials(GOOD), "admin")


# --- remove ------------------------------------------------------------------------------------


def test_remove_cancels_only_deliveries_that_have_not_started(world) -> None:
    service, _, _ = world
    service.secrets.put("01.telegram", Credentials(GOOD))
    states = ["awaiting_approval", "pending", "retry_wait", "claimed", "sent", "failed"]
    made = add_deliveries(service.engine, "01.telegram", "01", states)
    outcome = service.remove("01.telegram", "kênh bị thu hồi", "quantri.hanoi")
    assert outcome.cancelled == 3
    assert outcome.in_flight == 1
    assert outcome.secret_deleted
    with service.engine.connect() as conn:
        now = {
            r.id: (r.state, r.last_error)
            for r in conn.execute(sa.select(DELIVERY).where(DELIVERY.c.account_id == "01.telegram"))
        }
    for state in ("awaiting_approval", "pending", "retry_wait"):
        assert now[made.by_state[state]] == ("cancelled", "account removed: kênh bị thu hồi")
    for state in ("claimed", "sent", "failed"):
        assert now[made.by_state[state]][0] == state
    stored = row(service, "01.telegram")
    assert stored.status == "disabled"
    assert stored.secret_ciphertext is None
    assert service.secrets.get("01.telegram") is None
    [event] = events(service, "account_removed")
    assert event.details["cancelled_deliveries"] == 3
    assert event.details["reason"] == "kênh bị thu hồi"
    assert any("accounts.toml" in note for note in outcome.notes)


def test_remove_needs_a_reason_and_happens_once(world) -> None:
    service, _, _ = world
    with pytest.raises(ServiceError, match=r"needs a reason"):
        service.remove("01.telegram", "  ", "admin")
    service.remove("01.telegram", "gỡ", "admin")
    with pytest.raises(ServiceError, match=r"already removed"):
        service.remove("01.telegram", "gỡ", "admin")


# --- config loads --------------------------------------------------------------------------------


async def test_connected_accounts_survive_a_config_reload(world) -> None:
    service, _, _ = world
    await service.connect(request(), Credentials(GOOD), "quantri.hanoi")
    service.remove("01.facebook", "trang cũ", "quantri.hanoi")
    config = load_config(SAMPLE_CONFIG)
    sync_directory(config, service.directory)  # type: ignore[arg-type]
    sync_directory(config, service.directory)  # type: ignore[arg-type]
    connected = row(service, "01.telegram.hanoi_news")
    assert connected.origin == "connected"
    assert connected.status == "active"
    assert connected.display_name == "Tin Hà Nội"
    assert service.secrets.get("01.telegram.hanoi_news") == Credentials(GOOD)
    assert row(service, "01.facebook").status == "disabled"  # config never re-enables


async def test_a_config_entry_clashing_with_a_connected_account_is_refused(world) -> None:
    service, _, _ = world
    await service.connect(request(account_id="01.extra"), Credentials(GOOD), "admin")
    config = load_config(SAMPLE_CONFIG)
    same_id = ChannelAccount("01.extra", "79", config.accounts[0].platform, "other-page")
    config.accounts.append(same_id)
    with pytest.raises(ConfigError) as refused:
        sync_directory(config, service.directory)  # type: ignore[arg-type]
    [problem] = refused.value.problems
    assert problem.startswith("accounts.toml: account[")
    assert '"01.extra" is a connected account' in problem
    config.accounts[-1] = ChannelAccount("79.tg", "79", Platform.TELEGRAM, "@hanoi_news")
    with pytest.raises(ConfigError, match=r"already connected as account 01\.extra"):
        sync_directory(config, service.directory)  # type: ignore[arg-type]
    assert row(service, "79.tg") is None
    assert row(service, "01.extra").unit_code == "01"
    with pytest.raises(ValueError, match=r"connected account"):
        service.directory.upsert_accounts([same_id])


# --- secrets never leak --------------------------------------------------------------------------


async def test_secrets_never_reach_output_logs_audit_or_raw_database_bytes(
    world, caplog: pytest.LogCaptureFixture
) -> None:
    service, _, path = world
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    said.append(repr(await service.connect(request(), Credentials(GOOD), "admin")))
    said.append(
        repr(await service.connect(request(platform="facebook"), Credentials(SHORT_LIVED), "admin"))
    )
    for token in (BAD, AUTH_ERROR, DOWN):
        with pytest.raises(CheckFailed) as failed:
            await service.connect(request(external="@other"), Credentials(token), "admin")
        said.append(str(failed.value))
        with pytest.raises(CheckFailed) as failed:
            await service.rotate("01.telegram.hanoi_news", Credentials(token), "admin")
        said.append(str(failed.value))
    said.append(repr(await service.rotate("01.telegram.hanoi_news", Credentials(GOOD_2), "admin")))
    service.secrets.put("01.zalo", Credentials(BAD))
    said.append(repr(await service.test("01.zalo", "admin")))
    said.append(repr(service.remove("01.telegram.hanoi_news", f"lộ {GOOD_2}", "admin")))
    said.append(caplog.text)
    with service.engine.connect() as conn:
        said.extend(str(r._mapping) for r in conn.execute(sa.select(AUDIT)))
        said.extend(str(r._mapping) for r in conn.execute(sa.select(ACCOUNT)))
    text = "\n".join(said)
    raw = raw_database_bytes(path)
    for secret in ALL_SECRETS:
        assert secret not in text, secret
        assert secret.encode() not in raw, secret


# --- against the sandbox emulator ----------------------------------------------------------------

SANDBOX = "http://sandbox"


@pytest.mark.skipif(
    TelegramChannel.check is Channel.check,
    reason="TelegramChannel.check (getMe) is not implemented on this branch yet; the channel "
    "branches bring it — this test then runs against the sandbox emulator",
)
async def test_connect_and_test_against_the_sandbox(world) -> None:
    """The real Telegram plugin asks the in-process sandbox: a working bot token connects, a
    revoked one stops the account, and the refusal stores nothing new."""
    service, _, _ = world
    sandbox = make_app()
    token = "1000001:sandbox-connect-test"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox), base_url=SANDBOX
    ) as http:
        service.channels = {p.value: c for p, c in load_channels(http, SANDBOX).items()}
        outcome = await service.connect(
            request(external="@hanoi_sandbox"), Credentials(token), "quantri.hanoi"
        )
        assert outcome.ok, outcome.detail
        assert service.secrets.get(outcome.account_id) == Credentials(token)
        revoked = await http.post("/_sandbox/tokens/revoke", json={"tokens": [token]})
        assert revoked.is_success
        tested = await service.test(outcome.account_id, "quantri.hanoi")
        assert tested.verdict == "refused"
        assert row(service, outcome.account_id).status == "auth_failed"
        with pytest.raises(CheckFailed):
            await service.connect(
                request(external="@other_sandbox"), Credentials(token), "quantri.hanoi"
            )
        assert row(service, "01.telegram.other_sandbox") is None


@pytest.mark.postgres
async def test_connect_rotate_remove_and_reload_on_postgresql(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    try:
        repository = SqlRepository(engine)
        sync_directory(load_config(SAMPLE_CONFIG), repository)
        repository.upsert_users([HANOI_ADMIN])
        secrets = SecretStore(engine, Keyring.from_texts([generate_key()], "test"))
        service = AccountService(engine, repository, secrets, fake_channels(), clock=lambda: NOW)
        await service.connect(request(), Credentials(GOOD), "quantri.hanoi")
        with pytest.raises(PermissionDenied):
            await service.connect(request("79", "@hcm"), Credentials(GOOD), "quantri.hanoi")
        with pytest.raises(CheckFailed):
            await service.rotate("01.telegram.hanoi_news", Credentials(BAD), "quantri.hanoi")
        assert secrets.get("01.telegram.hanoi_news") == Credentials(GOOD)
        add_deliveries(engine, "01.telegram.hanoi_news", "01", ["pending", "sent"])
        removed = service.remove("01.telegram.hanoi_news", "gỡ", "quantri.hanoi")
        assert removed.cancelled == 1
        sync_directory(load_config(SAMPLE_CONFIG), repository)
        assert row(service, "01.telegram.hanoi_news").status == "disabled"
        assert row(service, "01.telegram.hanoi_news").origin == "connected"
        mine = [(e.action, e.target) for e in events(service) if e.actor == "quantri.hanoi"]
        assert mine == [
            ("account_connected", "account:01.telegram.hanoi_news"),
            ("refused", "unit:79"),
            ("account_rotate_failed", "account:01.telegram.hanoi_news"),
            ("account_removed", "account:01.telegram.hanoi_news"),
        ]
        assert verify_database(engine).ok
    finally:
        engine.dispose()


# --- the TUI's real backend ------------------------------------------------------------------


async def test_the_tui_backend_runs_the_use_cases_off_the_ui_thread(world) -> None:
    """CoreBackend runs each account use case in a worker thread with its own event loop and
    HTTP client (as the screen calls it), and turns refusals into ActionRefused."""
    service, channels, _ = world

    def accounts(http: httpx.AsyncClient) -> AccountService:
        return AccountService(
            service.engine, service.directory, service.secrets, channels, clock=lambda: NOW
        )

    backend = CoreBackend(
        service.engine, DeliveryService(service.engine, service.directory), {}, accounts
    )
    hanoi, editor = HANOI_ADMIN, service.directory.get_user("bientap.hanoi")
    assert editor is not None
    outcome = await asyncio.to_thread(
        backend.connect_account, hanoi, request("S01001", "@hk"), f"  {GOOD}\n"
    )
    assert outcome.account_id == "S01001.telegram.hk"
    assert service.secrets.get("S01001.telegram.hk") == Credentials(GOOD)
    with pytest.raises(ActionRefused) as bad:
        await asyncio.to_thread(backend.rotate_account, hanoi, "S01001.telegram.hk", BAD)
    assert "the old ones are kept" in bad.value.reason
    assert BAD not in bad.value.reason
    with pytest.raises(ActionRefused, match="JSON"):
        await asyncio.to_thread(backend.connect_account, hanoi, request(), '{"token": 1}')
    with pytest.raises(ActionRefused, match="may not test"):
        await asyncio.to_thread(backend.test_account, editor, "S01001.telegram.hk")
    tested = await asyncio.to_thread(backend.test_account, hanoi, "S01001.telegram.hk")
    assert tested.ok
    removed = await asyncio.to_thread(backend.remove_account, hanoi, "S01001.telegram.hk", "gỡ")
    assert removed.secret_deleted
    views = {v.account.id: v for v in Views(service.engine).accounts(hanoi, NOW)}
    assert views["S01001.telegram.hk"].origin == "connected"
    assert views["S01001.telegram.hk"].checked_at == NOW
    assert views["S01001.telegram.hk"].account.status is AccountStatus.DISABLED
