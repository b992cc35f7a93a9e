"""Who may do what, where: role × unit × action over the sample tree.

Written against the delivery engineer's `publisher.workflow.may` (the pure rule) and
`publisher.service.DeliveryService` (where every use case checks it), with the sample users of
config/users.toml: admin (admin at CP), bientap.cp (editor at CP only), duyet.hanoi (approver
and editor at 01), bientap.hanoi (editor at 01), duyet.hcm (approver and editor at 79),
quantri.quangninh (admin at 22), duyet.hoankiem (approver at S01001 only).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sec_helpers import SAMPLE_CONFIG
from sqlmodel import Session

from publisher import audit
from publisher.domain import PauseScope, PostState, Role
from publisher.service import DeliveryService, PermissionDenied
from publisher.settings import load_config
from publisher.settings.workflow import ApprovalStep, PolicyFile, PolicyRule
from publisher.store.memory import MemoryRepository
from publisher.store.sql import SqlRepository
from publisher.store.tables import ArticleRow, PostRow
from publisher.workflow import Action, may

NOW = datetime(2026, 11, 14, 2, 0, tzinfo=UTC)
CONFIG = load_config(SAMPLE_CONFIG)
USERS = {u.username: u for u in CONFIG.users}
DIRECTORY = MemoryRepository()
DIRECTORY.upsert_units(CONFIG.units)

A = Action
# (user, action, unit, allowed) — unit codes: CP root; 01 Hà Nội with communes S01001–S01003;
# 79 TP. HCM with S79001…; 22 Quảng Ninh with S22001….
TABLE = [
    # an approver of 01 decides for 01 and its communes, never for 79 or 22 or the root
    ("duyet.hanoi", A.APPROVE, "01", True),
    ("duyet.hanoi", A.APPROVE, "S01001", True),
    ("duyet.hanoi", A.REJECT, "S01003", True),
    ("duyet.hanoi", A.APPROVE, "79", False),
    ("duyet.hanoi", A.APPROVE, "S79001", False),
    ("duyet.hanoi", A.REJECT, "79", False),
    ("duyet.hanoi", A.APPROVE, "22", False),
    ("duyet.hanoi", A.APPROVE, "CP", False),
    ("duyet.hanoi", A.PAUSE, "79", False),
    ("duyet.hanoi", A.VIEW, "79", False),
    ("duyet.hanoi", A.POST_NOW, "S79002", False),
    # an editor edits and schedules, never approves, rejects, posts now or pauses
    ("bientap.hanoi", A.EDIT, "01", True),
    ("bientap.hanoi", A.SCHEDULE, "S01002", True),
    ("bientap.hanoi", A.NOMINATE, "01", True),
    ("bientap.hanoi", A.APPROVE, "01", False),
    ("bientap.hanoi", A.REJECT, "01", False),
    ("bientap.hanoi", A.POST_NOW, "01", False),
    ("bientap.hanoi", A.PAUSE, "01", False),
    ("bientap.hanoi", A.CANCEL, "01", False),
    ("bientap.hanoi", A.RETRY, "01", False),
    ("bientap.hanoi", A.EDIT, "79", False),
    # an editor at CP without subtree reaches CP only
    ("bientap.cp", A.EDIT, "CP", True),
    ("bientap.cp", A.EDIT, "01", False),
    ("bientap.cp", A.APPROVE, "CP", False),
    # the admin of 22 runs 22's subtree and nothing else
    ("quantri.quangninh", A.PAUSE, "22", True),
    ("quantri.quangninh", A.PAUSE, "S22001", True),
    ("quantri.quangninh", A.RESUME, "S22002", True),
    ("quantri.quangninh", A.APPROVE, "S22001", True),
    ("quantri.quangninh", A.PAUSE, "01", False),
    ("quantri.quangninh", A.RESUME, "01", False),
    ("quantri.quangninh", A.PAUSE, "CP", False),
    ("quantri.quangninh", A.APPROVE, "01", False),
    ("quantri.quangninh", A.VIEW, "S01001", False),
    # an approver without subtree at a commune: that commune only, never upward or sideways
    ("duyet.hoankiem", A.APPROVE, "S01001", True),
    ("duyet.hoankiem", A.APPROVE, "01", False),
    ("duyet.hoankiem", A.APPROVE, "S01002", False),
    # the root admin reaches everything
    ("admin", A.APPROVE, "S79001", True),
    ("admin", A.PAUSE, "CP", True),
    # HCM's approver is HCM's
    ("duyet.hcm", A.APPROVE, "S79001", True),
    ("duyet.hcm", A.APPROVE, "S01001", False),
]


@pytest.mark.parametrize(("username", "action", "unit", "allowed"), TABLE)
def test_permission_table(username: str, action: Action, unit: str, allowed: bool) -> None:
    user = USERS[username]
    assert may(user, action, unit, DIRECTORY.ancestors(unit)) is allowed


def test_every_sample_user_and_unit_is_real() -> None:
    codes = {u.code for u in CONFIG.units}
    assert {unit for _, _, unit, _ in TABLE} <= codes
    assert {name for name, _, _, _ in TABLE} == set(USERS)


@pytest.mark.parametrize("action", [A.APPROVE, A.REJECT])
def test_policy_can_keep_decisions_at_the_unit(action: Action) -> None:
    """With ancestors_may_act = false a province approver no longer decides for a commune;
    the commune's own approver still does."""
    rule = PolicyRule(units=["S01001"], ancestors_may_act=False)
    ancestors = DIRECTORY.ancestors("S01001")
    assert not may(USERS["duyet.hanoi"], action, "S01001", ancestors, rule)
    assert may(USERS["duyet.hoankiem"], action, "S01001", ancestors, rule)


def test_no_user_reaches_sideways_for_any_action() -> None:
    """Exhaustive: for every sample user, action and unit, a grant allows the action only at
    its own unit or (subtree) below it."""
    for user in CONFIG.users:
        for unit in CONFIG.units:
            ancestors = DIRECTORY.ancestors(unit.code)
            for action in Action:
                if not may(user, action, unit.code, ancestors):
                    continue
                reaching = [
                    g
                    for g in user.grants
                    if g.unit_code == unit.code or (g.subtree and g.unit_code in ancestors)
                ]
                assert reaching, (user.username, action, unit.code)


# --- through the service: refusals change nothing -------------------------------------------


@pytest.fixture
def service(sample_db) -> tuple[DeliveryService, sa.Engine, dict[str, int]]:  # type: ignore[no-untyped-def]
    engine, repository, _ = sample_db
    posts: dict[str, int] = {}
    with Session(engine) as session:
        for number, unit in enumerate(["01", "S01001", "79", "22", "S22001"], start=1):
            session.add(
                ArticleRow(
                    id=number,
                    guid=f"g{number}",
                    url=f"https://portal.gov.vn/{number}",
                    canonical_url=f"https://portal.gov.vn/{number}",
                    content_hash=f"h{number}",
                    title=f"Tin {number}",
                    published_at=NOW,
                    unit_code=unit,
                    kind="article",
                )
            )
            session.flush()
            session.add(
                PostRow(
                    id=number,
                    article_id=number,
                    unit_code=unit,
                    state=PostState.AWAITING_APPROVAL.value,
                )
            )
            posts[unit] = number
        session.commit()
    assert isinstance(repository, SqlRepository)
    return DeliveryService(engine, repository, clock=lambda: NOW), engine, posts


def post_state(engine: sa.Engine, post_id: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(sa.text("SELECT state FROM post WHERE id = :id"), {"id": post_id}).scalar()
        )


def test_service_refuses_cross_unit_decisions_and_changes_nothing(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    refused = [
        ("duyet.hanoi", posts["79"]),
        ("duyet.hanoi", posts["22"]),
        ("bientap.hanoi", posts["01"]),
        ("quantri.quangninh", posts["01"]),
        ("duyet.hoankiem", posts["01"]),
        ("duyet.hcm", posts["S01001"]),
    ]
    for username, post_id in refused:
        with pytest.raises(PermissionDenied):
            svc.approve([post_id], username)
        with pytest.raises(PermissionDenied):
            svc.reject([post_id], username, "không phù hợp")
        assert post_state(engine, post_id) == PostState.AWAITING_APPROVAL.value
    # a batch with one foreign post is refused whole
    with pytest.raises(PermissionDenied):
        svc.approve([posts["01"], posts["79"]], "duyet.hanoi")
    assert post_state(engine, posts["01"]) == PostState.AWAITING_APPROVAL.value


def test_service_allows_what_the_table_allows(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    assert svc.approve([posts["01"]], "duyet.hanoi") == [posts["01"]]
    assert svc.approve([posts["S01001"]], "duyet.hanoi") == [posts["S01001"]]
    assert svc.approve([posts["S22001"]], "quantri.quangninh") == [posts["S22001"]]
    svc.reject([posts["79"]], "duyet.hcm", "trùng lặp")
    assert post_state(engine, posts["79"]) == PostState.REJECTED.value


def test_pause_reaches_the_admins_subtree_only(service) -> None:  # type: ignore[no-untyped-def]
    svc, _, _ = service
    assert svc.pause(PauseScope.SUBTREE, "22", "sự cố", "quantri.quangninh") > 0
    assert svc.pause(PauseScope.UNIT, "S22001", "sự cố", "quantri.quangninh") > 0
    for scope, target in [
        (PauseScope.SUBTREE, "01"),
        (PauseScope.UNIT, "CP"),
        (PauseScope.ALL, ""),
        (PauseScope.CHANNEL, "facebook"),  # a platform everywhere: root only
        (PauseScope.ACCOUNT, "01.facebook"),
    ]:
        with pytest.raises(PermissionDenied):
            svc.pause(scope, target, "thử", "quantri.quangninh")
    with pytest.raises(PermissionDenied):
        svc.resume(PauseScope.SUBTREE, "22", "xong", "bientap.hanoi")
    assert svc.pause(PauseScope.ALL, "", "khẩn cấp", "admin") > 0


def test_refused_actions_are_audited(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    with pytest.raises(PermissionDenied):
        svc.approve([posts["79"]], "duyet.hanoi")
    with pytest.raises(PermissionDenied):
        svc.pause(PauseScope.SUBTREE, "01", "thử", "quantri.quangninh")
    with engine.connect() as conn:
        events = audit.load(conn)
    actors = [e.actor for e in events]
    assert "duyet.hanoi" in actors
    assert "quantri.quangninh" in actors
    refused = {e.actor: e for e in events if e.action == "refused"}
    approve = refused["duyet.hanoi"]
    assert approve.target == f"post:{posts['79']}"
    assert approve.details["attempted"] == "approve"
    assert approve.details["unit"] == "79"
    assert "may not approve" in approve.details["reason"]
    pause = refused["quantri.quangninh"]
    assert pause.details == {
        "attempted": "pause",
        "unit": "01",
        "reason": "quantri.quangninh may not pause for unit 01",
    }
    # the refused change itself left nothing behind, and the chain still verifies
    assert post_state(engine, posts["79"]) == PostState.AWAITING_APPROVAL.value
    assert [e.action for e in events] == ["refused", "refused"]
    assert audit.verify(events).ok


def test_a_refused_batch_is_audited_once_and_changes_nothing(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    with pytest.raises(PermissionDenied):
        svc.approve([posts["01"], posts["79"]], "duyet.hanoi", actor_label="hotro as duyet.hanoi")
    with engine.connect() as conn:
        events = audit.load(conn)
    assert [(e.actor, e.action) for e in events] == [("hotro as duyet.hanoi", "refused")]
    assert post_state(engine, posts["01"]) == PostState.AWAITING_APPROVAL.value


def test_a_two_step_policy_needs_the_second_steps_role(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    svc.policy = PolicyFile(
        rule=[
            PolicyRule(
                kinds=["article"],
                steps=[ApprovalStep(role=Role.APPROVER), ApprovalStep(role=Role.ADMIN)],
            )
        ]
    )
    svc.approve([posts["01"]], "duyet.hanoi")  # step 1: an approver signs
    with contextlib.suppress(PermissionDenied):
        svc.approve([posts["01"]], "duyet.hanoi")  # step 2 needs an admin
    assert post_state(engine, posts["01"]) == PostState.AWAITING_APPROVAL.value
    assert svc.pending_for("duyet.hanoi") == [posts["S01001"]]  # not the admin's step
    assert svc.approve([posts["01"]], "admin") == [posts["01"]]


def test_one_person_cannot_sign_both_steps(service) -> None:  # type: ignore[no-untyped-def]
    svc, engine, posts = service
    svc.policy = PolicyFile(
        rule=[PolicyRule(kinds=["article"], steps=[ApprovalStep(), ApprovalStep()])]
    )
    assert svc.approve([posts["01"]], "admin") == []
    with pytest.raises(PermissionDenied, match="already signed"):
        svc.approve([posts["01"]], "admin")
    assert post_state(engine, posts["01"]) == PostState.AWAITING_APPROVAL.value
    assert svc.approve([posts["01"]], "duyet.hanoi") == [posts["01"]]


def test_unknown_users_are_refused(service) -> None:  # type: ignore[no-untyped-def]
    svc, _, posts = service
    from publisher.service import NotFound

    with pytest.raises(NotFound):
        svc.approve([posts["01"]], "mallory")
