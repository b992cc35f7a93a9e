"""Who is acting: the OS account decides; `--as` only in the sandbox or with delegation."""

from __future__ import annotations

import os
import pwd

import pytest

from publisher.domain import Role, RoleGrant, User
from publisher.identity import (
    IdentityRefused,
    current_os_user,
    resolve_actor,
    resolve_identity,
    sandbox_enabled,
)
from publisher.store.memory import MemoryRepository

EDITOR = User("bientap.hanoi", grants=(RoleGrant("01", Role.EDITOR),), os_users=("lan",))
APPROVER = User("duyet.hanoi", grants=(RoleGrant("01", Role.APPROVER),), os_users=("minh", "m2"))
SUPPORT = User("hotro", os_users=("support",), may_act_for_others=True)


@pytest.fixture
def users() -> MemoryRepository:
    repository = MemoryRepository()
    repository.upsert_users([EDITOR, APPROVER, SUPPORT])
    return repository


def test_the_os_account_decides(users: MemoryRepository) -> None:
    assert resolve_actor("lan", None, users, sandbox=False) == EDITOR
    assert resolve_actor("m2", None, users, sandbox=False) == APPROVER
    identity = resolve_identity("lan", None, users, sandbox=False)
    assert not identity.acting_for_others
    assert identity.actor_label == "bientap.hanoi"


def test_asking_to_be_yourself_is_fine(users: MemoryRepository) -> None:
    assert resolve_actor("lan", "bientap.hanoi", users, sandbox=False) == EDITOR


def test_an_editor_cannot_become_an_approver_outside_the_sandbox(users: MemoryRepository) -> None:
    with pytest.raises(IdentityRefused, match=r"--as duyet\.hanoi: refused.*sandbox"):
        resolve_actor("lan", "duyet.hanoi", users, sandbox=False)


def test_an_unmapped_account_is_refused_with_the_fix(users: MemoryRepository) -> None:
    with pytest.raises(IdentityRefused, match=r"not mapped.*os_users"):
        resolve_actor("mallory", None, users, sandbox=False)
    with pytest.raises(IdentityRefused, match="refused"):
        resolve_actor("mallory", "duyet.hanoi", users, sandbox=False)


def test_sandbox_honours_as_and_says_so(users: MemoryRepository) -> None:
    identity = resolve_identity("mallory", "duyet.hanoi", users, sandbox=True)
    assert identity.user == APPROVER
    assert identity.acting_for_others
    assert identity.via == "sandbox"
    assert identity.actor_label == "os:mallory as duyet.hanoi"
    assert identity.audit_details()["acting_for_others"] is True


def test_delegation_is_honoured_and_audited_as_such(users: MemoryRepository) -> None:
    identity = resolve_identity("support", "duyet.hanoi", users, sandbox=False)
    assert identity.user == APPROVER
    assert identity.via == "delegation"
    assert identity.actor_label == "hotro as duyet.hanoi"
    assert identity.audit_details() == {
        "os_user": "support",
        "acting_for_others": True,
        "via": "delegation",
        "real_user": "hotro",
    }


def test_unknown_target_user(users: MemoryRepository) -> None:
    with pytest.raises(IdentityRefused, match="no such publisher user"):
        resolve_actor("support", "nobody", users, sandbox=True)


def test_the_os_user_comes_from_the_uid_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = pwd.getpwuid(os.geteuid()).pw_name
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "admin-impersonated")
    assert current_os_user() == real


@pytest.mark.parametrize(
    ("env", "demo", "expected"),
    [
        ({}, False, False),
        ({"PUBLISHER_SANDBOX_URL": ""}, False, False),
        ({"PUBLISHER_SANDBOX_URL": "  "}, False, False),
        ({"PUBLISHER_SANDBOX_URL": "http://127.0.0.1:8765"}, False, True),
        ({}, True, True),
    ],
)
def test_sandbox_detection(env: dict[str, str], demo: bool, expected: bool) -> None:
    assert sandbox_enabled(env, demo) is expected
