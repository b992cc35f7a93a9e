"""Who may do what to which unit's posts, and when a post is approved. Pure.

A role held at a unit reaches the units below it when the grant says `subtree`. For approval
decisions the unit's policy also has a say: with `ancestors_may_act = false` only the unit's
own approvers decide. A grant never reaches sideways: a province's approver never acts for
another province.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from publisher.domain import Role, User
from publisher.settings.workflow import ApprovalStep, PolicyFile, PolicyRule


class Action(StrEnum):
    VIEW = "view"
    EDIT = "edit"  # the lead-in (the only edit a directive allows)
    SCHEDULE = "schedule"
    NOMINATE = "nominate"
    RETRY = "retry"
    APPROVE = "approve"
    REJECT = "reject"
    POST_NOW = "post_now"
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    MANAGE_ACCOUNTS = "manage_accounts"  # connect, test, rotate, remove channel accounts
    RECALL = "recall"  # take a sent post back from every channel


ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.EDITOR: frozenset({Action.VIEW, Action.EDIT, Action.SCHEDULE, Action.NOMINATE}),
    Role.APPROVER: frozenset(
        {
            Action.VIEW,
            Action.APPROVE,
            Action.REJECT,
            Action.POST_NOW,
            Action.SCHEDULE,
            Action.RETRY,
            Action.CANCEL,
            Action.PAUSE,
            Action.RESUME,
            Action.RECALL,
        }
    ),
    Role.ADMIN: frozenset(Action),
}
DECISIONS = frozenset({Action.APPROVE, Action.REJECT})


def may(
    user: User,
    action: Action,
    unit_code: str,
    ancestors: Sequence[str],
    rule: PolicyRule | None = None,
) -> bool:
    """Does `user` hold a role allowing `action` that reaches `unit_code`?

    `ancestors` are the codes above the unit, nearest first. For approve/reject the policy
    `rule` decides whether a grant held above the unit counts.
    """
    above_allowed = not (action in DECISIONS and rule is not None and not rule.ancestors_may_act)
    for grant in user.grants:
        if action not in ROLE_ACTIONS[grant.role]:
            continue
        if grant.unit_code == unit_code:
            return True
        reaches_down = grant.subtree and grant.unit_code in ancestors
        if reaches_down and (above_allowed or grant.role is Role.ADMIN):
            return True
    return False


def policy_for(
    policy: PolicyFile, kind: str, unit_code: str, ancestors: Sequence[str]
) -> PolicyRule:
    """The most specific rule for this kind at this unit: the unit's own, then the nearest
    ancestor's (if the rule covers its subtree), then "*"; among equals the last written."""
    best: tuple[int, int] | None = None
    chosen: PolicyRule | None = None
    for index, rule in enumerate(policy.rule):
        if kind not in rule.kinds:
            continue
        distance: int | None = None
        if unit_code in rule.units:
            distance = 0
        elif rule.subtree:
            for depth, code in enumerate(ancestors, start=1):
                if code in rule.units:
                    distance = depth
                    break
        if distance is None and "*" in rule.units:
            distance = 10_000
        if distance is None:
            continue
        rank = (distance, -index)
        if best is None or rank < best:
            best, chosen = rank, rule
    if chosen is None:
        return PolicyRule(kinds=[kind])  # type: ignore[list-item]
    return chosen


@dataclass(frozen=True, slots=True)
class Progress:
    approved: bool
    step: int  # index of the step now waiting (== len(steps) when approved)
    waiting_for: tuple[str, ...] = ()  # users still needed for an "all" step


def _step_done(step: ApprovalStep, signers: set[str]) -> tuple[bool, tuple[str, ...]]:
    if step.mode == "all":
        missing = tuple(u for u in step.users if u not in signers)
        return not missing, missing
    return bool(signers), ()


def progress(rule: PolicyRule, approvals: Sequence[str]) -> Progress:
    """Where approval stands. `approvals` holds "step:username" entries in order."""
    if rule.auto_approve or not rule.steps:
        return Progress(True, len(rule.steps))
    by_step: dict[int, set[str]] = {}
    for entry in approvals:
        step_text, _, username = entry.partition(":")
        if step_text.isdigit():
            by_step.setdefault(int(step_text), set()).add(username)
    for index, step in enumerate(rule.steps):
        done, missing = _step_done(step, by_step.get(index, set()))
        if not done:
            return Progress(False, index, missing)
    return Progress(True, len(rule.steps))


def holds_role_at(
    user: User, role: Role, unit_code: str, ancestors: Sequence[str], ancestors_may_act: bool
) -> bool:
    """Does `user` hold `role` (or admin, which holds every role's powers) reaching `unit_code`?
    Same reach as `may` for decisions: the unit itself, or a subtree grant above it when the
    policy lets ancestors act (an admin's subtree grant always reaches)."""
    for grant in user.grants:
        if grant.role is not role and grant.role is not Role.ADMIN:
            continue
        if grant.unit_code == unit_code:
            return True
        reaches_down = grant.subtree and grant.unit_code in ancestors
        if reaches_down and (ancestors_may_act or grant.role is Role.ADMIN):
            return True
    return False


def may_sign_step(
    user: User,
    step: ApprovalStep,
    unit_code: str,
    ancestors: Sequence[str],
    rule: PolicyRule,
) -> bool:
    """Does `user` hold the step's role at the unit (and, when the step names users, is one)?
    Separation of duties across steps is checked by `sign`, which knows the approvals."""
    if step.users and user.username not in step.users:
        return False
    return holds_role_at(user, step.role, unit_code, ancestors, rule.ancestors_may_act)


def _signers(approvals: Sequence[str]) -> dict[str, set[int]]:
    """username → the steps they signed."""
    signed: dict[str, set[int]] = {}
    for entry in approvals:
        step_text, _, username = entry.partition(":")
        if step_text.isdigit():
            signed.setdefault(username, set()).add(int(step_text))
    return signed


def step_refusal(
    rule: PolicyRule,
    approvals: Sequence[str],
    user: User,
    unit_code: str,
    ancestors: Sequence[str],
) -> str | None:
    """Why `user` may not sign the step now waiting at `unit_code`, or None if they may."""
    state = progress(rule, approvals)
    if state.approved:
        return None
    step = rule.steps[state.step]
    if step.users and user.username not in step.users:
        return f"step {state.step + 1} is for {', '.join(step.users)} only"
    if not holds_role_at(user, step.role, unit_code, ancestors, rule.ancestors_may_act):
        return f"step {state.step + 1} needs the {step.role.value} role at unit {unit_code}"
    earlier = _signers(approvals).get(user.username, set()) - {state.step}
    if earlier:
        # Separation of duties: each step is a different person's judgement.
        return f"{user.username} already signed step {min(earlier) + 1} of this post"
    return None


def sign(
    rule: PolicyRule,
    approvals: Sequence[str],
    user: User,
    unit_code: str,
    ancestors: Sequence[str],
) -> tuple[str, ...] | None:
    """The approvals after `user` signs the waiting step, or None if they may not sign it
    (`step_refusal` says why)."""
    state = progress(rule, approvals)
    if state.approved:
        return tuple(approvals)
    if step_refusal(rule, approvals, user, unit_code, ancestors) is not None:
        return None
    entry = f"{state.step}:{user.username}"
    if entry in approvals:
        return tuple(approvals)
    return (*approvals, entry)
