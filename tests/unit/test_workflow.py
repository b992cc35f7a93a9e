from __future__ import annotations

from publisher.domain import Role, RoleGrant, User
from publisher.settings.workflow import ApprovalStep, PolicyFile, PolicyRule
from publisher.workflow import Action, may, policy_for, progress, sign

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


def test_two_steps_any_then_all():
    rule = PolicyRule(steps=[ApprovalStep(), ApprovalStep(mode="all", users=["a", "b"])])
    approvals: tuple[str, ...] = ()
    assert progress(rule, approvals).step == 0
    approvals = sign(rule, approvals, User("x"))
    assert progress(rule, approvals).step == 1
    assert sign(rule, approvals, User("x")) is None  # not named in the "all" step
    approvals = sign(rule, approvals, User("a"))
    assert progress(rule, approvals).waiting_for == ("b",)
    approvals = sign(rule, approvals, User("b"))
    assert progress(rule, approvals).approved
