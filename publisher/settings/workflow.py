"""Schemas of routing.toml, policy.toml and schedule.toml (the delivery engine's settings).

Unknown keys are errors (extra="forbid"). Every file is optional: the defaults below are a
working policy (directives cascade to the whole tree and are trusted; unit articles need one
approver of the unit or, where allowed, of a unit above it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from publisher.domain import ArticleKind, Role

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
RANGE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- routing.toml ---------------------------------------------------------------------------


class DirectiveRule(Strict):
    """Where a central directive goes. The first rule whose category matches wins; a rule
    without a category is the default."""

    category: str | None = None
    kinds: list[str] = Field(default_factory=lambda: ["*"])  # unit kinds reached; "*": all
    units: list[str] = Field(default_factory=list)  # only these units …
    subtree: bool = True  # … and everything below them
    include_root: bool = True  # the central portal publishes it on its own channels too


class RoutingFile(Strict):
    directive: list[DirectiveRule] = Field(default_factory=lambda: [DirectiveRule()])
    nominate_to: Literal["parent", "root"] = "parent"
    root_languages: list[str] = Field(default_factory=lambda: ["vi", "en", "zh"])
    # Directives in other languages stay at the root (only its language-bound accounts).
    cascade_languages: list[str] = Field(default_factory=lambda: ["vi"])

    def rule_for(self, category: str | None) -> DirectiveRule | None:
        for rule in self.directive:
            if rule.category is not None and rule.category == category:
                return rule
        return next((rule for rule in self.directive if rule.category is None), None)


# --- policy.toml ----------------------------------------------------------------------------


class ApprovalStep(Strict):
    role: Role = Role.APPROVER
    mode: Literal["any", "all"] = "any"  # "all": every user listed in `users`
    users: list[str] = Field(default_factory=list)  # empty: anyone holding `role`


PolicyKind = Literal["directive", "article", "nominated"]


class PolicyRule(Strict):
    """Approval for articles of `kinds` at `units` ("*" for every unit; `subtree` covers the
    units below). The most specific matching rule applies: the unit itself, then its nearest
    ancestor, then "*"; among equals the last one written."""

    units: list[str] = Field(default_factory=lambda: ["*"])
    subtree: bool = True
    kinds: list[PolicyKind] = Field(default_factory=lambda: list[PolicyKind](["article"]))
    auto_approve: bool = False
    steps: list[ApprovalStep] = Field(default_factory=lambda: [ApprovalStep()])
    ancestors_may_act: bool = True  # a province approver may approve for its communes


class PolicyFile(Strict):
    rule: list[PolicyRule] = Field(
        default_factory=lambda: [
            PolicyRule(kinds=["directive"], auto_approve=True),
            PolicyRule(kinds=["article", "nominated"]),
        ]
    )


def policy_kind(kind: ArticleKind, nominated: bool) -> str:
    return "nominated" if nominated else kind.value


# --- schedule.toml --------------------------------------------------------------------------


class AccountSchedule(Strict):
    slots: list[str] = Field(default_factory=list)  # "HH:MM" Vietnam time; empty: any time
    quiet_hours: list[str] = Field(default_factory=list)  # "22:00-06:00"
    min_gap_minutes: float = Field(default=0, ge=0)

    @field_validator("slots")
    @classmethod
    def _slots(cls, values: list[str]) -> list[str]:
        for value in values:
            if not HHMM.match(value):
                raise ValueError(f'"{value}" is not a time HH:MM')
        return sorted(values)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, values: list[str]) -> list[str]:
        for value in values:
            if not RANGE.match(value):
                raise ValueError(f'"{value}" is not a range HH:MM-HH:MM')
        return values


class ArchiveSchedule(Strict):
    """`publisher run` archives finished deliveries (publisher/store/archive.py) this often."""

    every_hours: float = Field(default=0, ge=0)  # 0: never (run `publisher archive` by hand)
    older_than_days: float = Field(default=30, ge=0)
    batch: int = Field(default=5000, ge=1)
    max_batches: int = Field(default=40, ge=1)  # per round: short write locks, a bit at a time


class ScheduleFile(Strict):
    default: AccountSchedule = Field(
        default_factory=lambda: AccountSchedule(quiet_hours=["23:00-06:00"])
    )
    platform: dict[str, AccountSchedule] = Field(default_factory=dict)
    account: dict[str, AccountSchedule] = Field(default_factory=dict)
    stagger_seconds: float = Field(default=300, ge=0)  # spread a cascade over this window
    urgent_stagger_seconds: float = Field(default=30, ge=0)
    urgent_priority: int = 100
    expiry_hours: dict[str, float] = Field(
        default_factory=lambda: {"directive": 48.0, "article": 72.0}
    )
    platform_min_gap_seconds: dict[str, float] = Field(default_factory=dict)
    archive: ArchiveSchedule = Field(default_factory=ArchiveSchedule)

    def for_account(self, account_id: str, platform: str) -> AccountSchedule:
        return self.account.get(account_id) or self.platform.get(platform) or self.default


def cross_check(workflow: Mapping[str, BaseModel], known_units: set[str]) -> list[str]:
    """Checks that need the unit directory: every unit named must exist."""
    problems: list[str] = []
    routing = workflow.get("routing")
    if isinstance(routing, RoutingFile):
        for r_index, rule in enumerate(routing.directive):
            for u_index, code in enumerate(rule.units):
                if code not in known_units:
                    problems.append(
                        f"routing.toml: directive[{r_index}].units[{u_index}]: "
                        f'unknown unit "{code}"'
                    )
    policy = workflow.get("policy")
    if isinstance(policy, PolicyFile):
        for r_index, prule in enumerate(policy.rule):
            for u_index, code in enumerate(prule.units):
                if code != "*" and code not in known_units:
                    problems.append(
                        f'policy.toml: rule[{r_index}].units[{u_index}]: unknown unit "{code}"'
                    )
            for s_index, step in enumerate(prule.steps):
                if step.mode == "all" and not step.users:
                    problems.append(
                        f'policy.toml: rule[{r_index}].steps[{s_index}].users: mode "all" '
                        "needs the list of users who must all approve"
                    )
    return problems
