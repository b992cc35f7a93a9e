"""Loading and validating the deployment configuration (the TOML files in a config folder).

`load_config(folder)` returns a `Config` or raises `ConfigError` carrying every problem found,
each as one line `file: key: reason`. Checks that span files (unknown units, duplicate codes,
cycles in the unit tree) run after each file's own schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomli
from pydantic import BaseModel, ValidationError

from publisher.domain import (
    ArticleKind,
    ChannelAccount,
    Role,
    RoleGrant,
    Source,
    SourceKind,
    Unit,
    User,
)
from publisher.ingest.pages import check_selectors
from publisher.settings.directory import (
    AccountsFile,
    NationalUnitsFile,
    SourcesFile,
    UnitEntry,
    UnitsFile,
    UsersFile,
)
from publisher.settings.notify import NotifyFile
from publisher.settings.workflow import PolicyFile, RoutingFile, ScheduleFile
from publisher.settings.workflow import cross_check as workflow_cross_check

REQUIRED_FILES = ("units.toml",)
# Written by `publisher units import` (publisher/national.py): the official communes.
NATIONAL_UNITS_FILE = "units-national.toml"
DIRECTORY_FILES: dict[str, type[BaseModel]] = {
    "units.toml": UnitsFile,
    NATIONAL_UNITS_FILE: NationalUnitsFile,
    "users.toml": UsersFile,
    "accounts.toml": AccountsFile,
    "sources.toml": SourcesFile,
    "notify.toml": NotifyFile,
}
# Routing, scheduling and approval policy (schemas in publisher.settings.workflow).
WORKFLOW_FILES: dict[str, type[BaseModel]] = {
    "routing.toml": RoutingFile,
    "schedule.toml": ScheduleFile,
    "policy.toml": PolicyFile,
}

Model = TypeVar("Model", bound=BaseModel)


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Config:
    folder: Path
    units: list[Unit]
    users: list[User]
    accounts: list[ChannelAccount]
    sources: list[Source]
    workflow: dict[str, BaseModel] = field(default_factory=dict)  # "routing" → RoutingFile …
    push_secrets: dict[str, str] = field(default_factory=dict)  # source id → secret reference
    notify: NotifyFile = field(default_factory=NotifyFile)
    # Zalo accounts that broadcast each article → broadcasts a month in the OA's package.
    zalo_broadcasts: dict[str, int] = field(default_factory=dict)
    # Sample units replaced by official ones (units-national.toml): old code → new code.
    # Accounts, roles, sources and contacts at an old code belong to the new one.
    replaced: dict[str, str] = field(default_factory=dict)

    @property
    def routing(self) -> RoutingFile:
        found = self.workflow.get("routing")
        return found if isinstance(found, RoutingFile) else RoutingFile()

    @property
    def policy(self) -> PolicyFile:
        found = self.workflow.get("policy")
        return found if isinstance(found, PolicyFile) else PolicyFile()

    @property
    def schedule(self) -> ScheduleFile:
        found = self.workflow.get("schedule")
        return found if isinstance(found, ScheduleFile) else ScheduleFile()

    @property
    def root(self) -> Unit:
        return next(u for u in self.units if u.parent_code is None)


def _key(location: tuple[Any, ...]) -> str:
    """pydantic's error location ("unit", 3, "code") as "unit[3].code"."""
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"


def _read(path: Path, model: type[Model], problems: list[str]) -> Model | None:
    try:
        data = tomli.loads(path.read_text(encoding="utf-8"))
    except tomli.TOMLDecodeError as error:
        problems.append(f"{path.name}: (file): not valid TOML: {error}")
        return None
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{path.name}: (file): cannot be read: {error}")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            message = item["msg"]
            if item["type"] == "extra_forbidden":
                message = "unknown key (not part of the schema)"
            problems.append(f"{path.name}: {_key(item['loc'])}: {message}")
        return None


def _check_tree(entries: list[tuple[str, int, UnitEntry]], problems: list[str]) -> None:
    """Duplicates, unknown parents and cycles over the units of every units file; each
    entry is (file, index in that file, unit)."""
    first_at: dict[str, tuple[str, int]] = {}
    for file, index, unit in entries:
        if unit.code in first_at:
            first_file, first_index = first_at[unit.code]
            where = (
                f"unit[{first_index}]"
                if first_file == file
                else f"{first_file} unit[{first_index}]"
            )
            problems.append(
                f'{file}: unit[{index}].code: duplicate code "{unit.code}" (first at {where})'
            )
        else:
            first_at[unit.code] = (file, index)
    parents = {u.code: u.parent for _, _, u in entries}
    for file, index, unit in entries:
        if unit.parent is not None and unit.parent not in parents:
            problems.append(f'{file}: unit[{index}].parent: unknown unit "{unit.parent}"')
    reported: set[str] = set()
    # Units whose chain of parents (in `parents`) ends without a cycle: a walk that reaches
    # one stops there, so the national tree (~3,400 units, four deep) is walked once, not once
    # per unit. A duplicate code whose own parent is not the one in `parents` is walked in
    # full: its chain may come back to itself through units marked from the other entry.
    rooted: set[str] = set()
    for file, index, unit in entries:
        as_in_parents = parents[unit.code] == unit.parent
        trail = [unit.code]
        current = unit.parent
        while current is not None and current in parents:
            if current in trail:
                cycle = [*trail[trail.index(current) :], current]
                if not reported.intersection(cycle):
                    problems.append(
                        f"{file}: unit[{index}].parent: cycle in the unit tree: "
                        + " → ".join(cycle)
                    )
                reported.update(cycle)
                break
            if as_in_parents and current in rooted:
                break
            trail.append(current)
            current = parents[current]
        else:
            current = None  # the walk ended at the root or at an unknown parent
        if current is None or current in rooted:
            rooted.update(trail[1:])  # reached through `parents`
            if as_in_parents:
                rooted.add(unit.code)
    if entries and not any(u.parent is None for _, _, u in entries):
        problems.append("units.toml: unit: no root unit (one unit must have no parent)")


def _check_replaced(
    national: NationalUnitsFile, units_file: UnitsFile, known: set[str], problems: list[str]
) -> dict[str, str]:
    """units-national.toml's `replaced`: sample code → official code (both must exist)."""
    mine = {u.code for u in units_file.unit}
    parents = {u.parent for u in units_file.unit} | {u.parent for u in national.unit}
    successor: dict[str, str] = {}
    for index, entry in enumerate(national.replaced):
        where = f"{NATIONAL_UNITS_FILE}: replaced[{index}]"
        if entry.code not in mine:
            problems.append(f'{where}.code: "{entry.code}" is not a unit of units.toml')
        elif entry.by not in known or entry.by == entry.code:
            problems.append(f'{where}.by: unknown unit "{entry.by}"')
        elif entry.code in successor:
            problems.append(f'{where}.code: "{entry.code}" is replaced twice')
        elif entry.code in parents:
            problems.append(f'{where}.code: "{entry.code}" has units below it')
        else:
            successor[entry.code] = entry.by
    return successor


def _check_references(
    file: str,
    section: str,
    field_name: str,
    values: list[str],
    known: set[str],
    problems: list[str],
) -> None:
    for index, value in enumerate(values):
        if value not in known:
            problems.append(f'{file}: {section}[{index}].{field_name}: unknown unit "{value}"')


def _check_unique(file: str, section: str, ids: list[str], problems: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            problems.append(
                f'{file}: {section}[{index}].id: duplicate id "{value}" '
                f"(first at {section}[{seen[value]}])"
            )
        else:
            seen[value] = index


def load_config(folder: Path) -> Config:
    """Read and check every file in `folder`; raise `ConfigError` listing every problem."""
    problems: list[str] = []
    if not folder.is_dir():
        raise ConfigError([f"{folder}: (folder): configuration folder not found"])
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            problems.append(f"{name}: (file): missing (required)")
    known_names = set(DIRECTORY_FILES) | set(WORKFLOW_FILES)
    for extra in sorted(p.name for p in folder.glob("*.toml") if p.name not in known_names):
        problems.append(f"{extra}: (file): unknown configuration file")

    parsed: dict[str, BaseModel | None] = {}
    for name, model in DIRECTORY_FILES.items():
        path = folder / name
        parsed[name] = _read(path, model, problems) if path.is_file() else model()

    workflow: dict[str, BaseModel] = {}
    for name, schema in WORKFLOW_FILES.items():
        path = folder / name
        loaded = _read(path, schema, problems) if path.is_file() else schema()
        if loaded is not None:
            workflow[name.removesuffix(".toml")] = loaded

    units_file = parsed["units.toml"]
    users_file = parsed["users.toml"]
    accounts_file = parsed["accounts.toml"]
    sources_file = parsed["sources.toml"]
    national_file = parsed[NATIONAL_UNITS_FILE]
    known: set[str] = set()
    successor: dict[str, str] = {}
    if isinstance(units_file, UnitsFile) and isinstance(national_file, NationalUnitsFile):
        entries = [("units.toml", i, u) for i, u in enumerate(units_file.unit)]
        entries += [(NATIONAL_UNITS_FILE, i, u) for i, u in enumerate(national_file.unit)]
        _check_tree(entries, problems)
        known = {u.code for _, _, u in entries}
        successor = _check_replaced(national_file, units_file, known, problems)
    if known:
        if isinstance(users_file, UsersFile):
            _check_unique("users.toml", "user", [u.username for u in users_file.user], problems)
            for u_index, user in enumerate(users_file.user):
                for g_index, grant in enumerate(user.roles):
                    if grant.unit not in known:
                        problems.append(
                            f"users.toml: user[{u_index}].roles[{g_index}].unit: "
                            f'unknown unit "{grant.unit}"'
                        )
        if isinstance(accounts_file, AccountsFile):
            _check_unique(
                "accounts.toml", "account", [a.id for a in accounts_file.account], problems
            )
            _check_references(
                "accounts.toml",
                "account",
                "unit",
                [a.unit for a in accounts_file.account],
                known,
                problems,
            )
        if isinstance(sources_file, SourcesFile):
            _check_unique("sources.toml", "source", [s.id for s in sources_file.source], problems)
            _check_references(
                "sources.toml",
                "source",
                "unit",
                [s.unit for s in sources_file.source],
                known,
                problems,
            )
            for index, src in enumerate(sources_file.source):
                for problem in check_selectors(src.selectors):
                    problems.append(f"sources.toml: source[{index}].{problem}")
                if src.kind is not SourceKind.PUSH and not src.url:
                    problems.append(
                        f"sources.toml: source[{index}].url: required for {src.kind.value} sources"
                    )
    notify_file = parsed["notify.toml"]
    if known and isinstance(notify_file, NotifyFile) and isinstance(users_file, UsersFile):
        usernames = {u.username for u in users_file.user}
        for index, contact in enumerate(notify_file.contact):
            if contact.user is not None and contact.user not in usernames:
                problems.append(
                    f'notify.toml: contact[{index}].user: unknown user "{contact.user}"'
                )
            if contact.unit is not None and contact.unit not in known:
                problems.append(
                    f'notify.toml: contact[{index}].unit: unknown unit "{contact.unit}"'
                )
    if not problems:
        problems.extend(workflow_cross_check(workflow, known))
    if problems:
        raise ConfigError(problems)

    assert isinstance(units_file, UnitsFile)
    assert isinstance(national_file, NationalUnitsFile)
    assert isinstance(users_file, UsersFile)
    assert isinstance(accounts_file, AccountsFile)
    assert isinstance(sources_file, SourcesFile)
    return Config(
        folder=folder,
        units=[
            Unit(
                code=u.code,
                name=u.name,
                kind=u.kind,
                parent_code=u.parent,
                code_list=u.code_list if u.code_list is not None else file.code_list,
                short_name=u.short_name,
                active=u.code not in successor,
                merged_into=successor.get(u.code),
            )
            for file, entries in (
                (units_file, units_file.unit),
                (national_file, national_file.unit),
            )
            for u in entries
        ],
        users=[
            User(
                username=u.username,
                display_name=u.display_name,
                grants=tuple(
                    RoleGrant(successor.get(g.unit, g.unit), Role(g.role), g.subtree)
                    for g in u.roles
                ),
                os_users=tuple(u.os_users),
                may_act_for_others=u.may_act_for_others,
            )
            for u in users_file.user
        ],
        accounts=[
            ChannelAccount(
                id=a.id,
                unit_code=successor.get(a.unit, a.unit),
                platform=a.platform,
                external_id=a.external_id,
                display_name=a.display_name,
                credentials_ref=a.credentials,
                token_expires_at=a.token_expires_at,
                language=a.language,
            )
            for a in accounts_file.account
        ],
        sources=[
            Source(
                id=s.id,
                unit_code=successor.get(s.unit, s.unit),
                kind=s.kind,
                url=s.url,
                article_kind=ArticleKind(s.article_kind),
                poll_interval_s=s.poll_interval_s,
                timezone=s.timezone,
                allow_private_network=s.allow_private_network,
                selectors=dict(s.selectors),
                category=s.category,
            )
            for s in sources_file.source
        ],
        workflow=workflow,
        push_secrets={s.id: s.push_secret for s in sources_file.source if s.push_secret},
        zalo_broadcasts={
            a.id: a.zalo_package_broadcasts
            for a in accounts_file.account
            if a.zalo_broadcast and a.zalo_package_broadcasts is not None
        },
        notify=_notify_after(notify_file, successor),
        replaced=successor,
    )


def _notify_after(notify: BaseModel | None, successor: dict[str, str]) -> NotifyFile:
    """notify.toml with contacts at a replaced unit moved to its successor."""
    if not isinstance(notify, NotifyFile):
        return NotifyFile()
    if not successor or not any(c.unit in successor for c in notify.contact):
        return notify
    contacts = [
        c.model_copy(update={"unit": successor[c.unit]}) if c.unit in successor else c
        for c in notify.contact
    ]
    return notify.model_copy(update={"contact": contacts})
