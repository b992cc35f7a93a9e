from __future__ import annotations

from publisher.domain import Role, RoleGrant, User
from publisher.settings.workflow import ApprovalStep, PolicyFile, PolicyRule
from publisher.workflow import (
    Action,
    may,
    may_sign_step,
    policy_for,
    progress,
    sign,
    step_refusal,
)

HANOI_COMMUNE_ANCESTORS = ["01", "CP"]
approver_01 = User("duyet.hanoi", grants=(RoleGrant("01", Role.APPROVER),))
editor_01 = User("bientap.hanoi", grants=(RoleGrant("01", Role.EDITOR),))
approver_79 = User("duyet.hcm", grants=(RoleGrant("79", Role.APPROVER),))
admin = User("admin", grants=(RoleGrant("CP", Role.ADMIN),))


def test_a_province_approver_acts_for_its_communes_never_another_province():
    assert may(approver_01, Action.APPROVE, "01", ["CP"])
    assert may(approver_01, Action.APPROVE, "00004", HANOI_COMMUNE_ANCESTORS)
    assert not may(approver_01, Action.APPROVE, "79", ["CP"])
    assert not may(approver_79, Action.APPROVE, "00004", HANOI_COMMUNE_ANCESTORS)


def test_policy_can_forbid_ancestors_from_deciding():
    own_only = PolicyRule(units=["00004"], ancestors_may_act=False)
    assert not may(approver_01, Action.APPROVE, "00004", HANOI_COMMUNE_ANCESTORS, own_only)
    assert may(approver_01, Action.PAUSE, "00004", HANOI_COMMUNE_ANCESTORS, own_only)


def test_editors_cannot_approve_and_grants_without_subtree_stay_put():
    assert not may(editor_01, Action.APPROVE, "01", ["CP"])
    assert may(editor_01, Action.EDIT, "01", ["CP"])
    flat = User("x", grants=(RoleGrant("01", Role.APPROVER, subtree=False),))
    assert not may(flat, Action.APPROVE, "00004", HANOI_COMMUNE_ANCESTORS)
    assert may(admin, Action.CANCEL, "00004", HANOI_COMMUNE_ANCESTORS)


def test_the_most_specific_policy_rule_applies():
    policy = PolicyFile(
        rule=[
            PolicyRule(kinds=["article"]),
            PolicyRule(units=["01"], kinds=["article"], auto_approve=True),
            PolicyRule(units=["00004"], kinds=["article"], subtree=False),
        ]
    )
    assert policy_for(policy, "article", "00004", HANOI_COMMUNE_ANCESTORS).auto_approve is False
    assert policy_for(policy, "article", "00007", HANOI_COMMUNE_ANCESTORS).auto_approve is True
    assert policy_for(policy, "article", "79", ["CP"]).auto_approve is False
    assert policy_for(PolicyFile(), "directive", "79", ["CP"]).auto_approve is True


def approver(name: str, unit: str = "01", subtree: bool = True) -> User:
    return User(name, grants=(RoleGrant(unit, Role.APPROVER, subtree=subtree),))


def test_two_steps_any_then_all():
    rule = PolicyRule(steps=[ApprovalStep(), ApprovalStep(mode="all", users=["a", "b"])])
    approvals: tuple[str, ...] = ()
    assert progress(rule, approvals).step == 0
    approvals = sign(rule, approvals, approver("x"), "01", ["CP"])
    assert progress(rule, approvals).step == 1
    assert sign(rule, approvals, approver("y"), "01", ["CP"]) is None  # not named
    approvals = sign(rule, approvals, approver("a"), "01", ["CP"])
    assert progress(rule, approvals).waiting_for == ("b",)
    assert sign(rule, approvals, approver("a"), "01", ["CP"]) == approvals  # idempotent
    approvals = sign(rule, approvals, approver("b"), "01", ["CP"])
    assert progress(rule, approvals).approved


def test_each_step_needs_its_role_at_the_unit():
    rule = PolicyRule(steps=[ApprovalStep(role=Role.APPROVER), ApprovalStep(role=Role.ADMIN)])
    after_first = sign(rule, (), approver_01, "00004", HANOI_COMMUNE_ANCESTORS)
    assert after_first == ("0:duyet.hanoi",)
    # an approver never signs the admin step, wherever their grant is
    other = approver("duyet2.hanoi")
    assert sign(rule, after_first, other, "00004", HANOI_COMMUNE_ANCESTORS) is None
    assert "admin" in (
        step_refusal(rule, after_first, other, "00004", HANOI_COMMUNE_ANCESTORS) or ""
    )
    # an editor never signs an approver step
    assert sign(rule, (), editor_01, "01", ["CP"]) is None
    # the admin of another province does not reach here
    admin_79 = User("quantri.hcm", grants=(RoleGrant("79", Role.ADMIN),))
    assert sign(rule, after_first, admin_79, "00004", HANOI_COMMUNE_ANCESTORS) is None
    # the root admin does (subtree), and that completes the post
    done = sign(rule, after_first, admin, "00004", HANOI_COMMUNE_ANCESTORS)
    assert done is not None
    assert progress(rule, done).approved


def test_one_person_never_signs_two_steps_of_a_post():
    rule = PolicyRule(steps=[ApprovalStep(), ApprovalStep()])
    after_first = sign(rule, (), admin, "01", ["CP"])
    assert after_first == ("0:admin",)
    assert sign(rule, after_first, admin, "01", ["CP"]) is None
    why = step_refusal(rule, after_first, admin, "01", ["CP"])
    assert why is not None
    assert "already signed" in why
    done = sign(rule, after_first, approver_01, "01", ["CP"])
    assert done is not None
    assert progress(rule, done).approved


def test_the_step_role_follows_the_reach_rules():
    own_only = PolicyRule(ancestors_may_act=False, steps=[ApprovalStep()])
    # a province approver does not sign for a commune that keeps decisions to itself
    assert sign(own_only, (), approver_01, "00004", HANOI_COMMUNE_ANCESTORS) is None
    commune = approver("duyet.xa", "00004", subtree=False)
    assert sign(own_only, (), commune, "00004", HANOI_COMMUNE_ANCESTORS) == ("0:duyet.xa",)
    # a grant without subtree stays at its unit
    flat = approver("flat", "01", subtree=False)
    assert sign(PolicyRule(), (), flat, "00004", HANOI_COMMUNE_ANCESTORS) is None
    assert may_sign_step(flat, ApprovalStep(), "01", ["CP"], PolicyRule())
