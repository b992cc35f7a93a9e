"""Who is acting: the operating-system account, mapped to a publisher user.

On a shared server the TUI and CLI never trust a name typed on the command line: the acting
user is the one whose `os_users` lists the OS account running the process (the effective uid,
looked up in the password database — not `$USER` or `$LOGNAME`, which anyone can set).
`--as USER` is honoured only
- in the sandbox/demo (`PUBLISHER_SANDBOX_URL` set, or the caller says it is a demo), or
- when the OS account maps to a user allowed to act for others (`User.may_act_for_others`),
and the result says so, so the service layer can audit it as acting for someone else.

`resolve_identity` is pure apart from the repository lookups; `current_os_user` is the one
place that asks the operating system.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from publisher.domain import User

SANDBOX_ENV = "PUBLISHER_SANDBOX_URL"


class UserDirectory(Protocol):
    def get_user(self, username: str) -> User | None: ...
    def user_for_os_account(self, os_user: str) -> User | None: ...


class IdentityRefused(Exception):
    """The process may not act as anyone, or not as the user it asked for. One clear line."""


@dataclass(frozen=True, slots=True)
class Identity:
    user: User  # whose permissions apply
    os_user: str  # who is really at the keyboard
    mapped_user: str | None  # the publisher user the OS account maps to, if any
    acting_for_others: bool = False
    via: str = "os-account"  # "os-account" | "sandbox" | "delegation"

    @property
    def actor_label(self) -> str:
        """The actor to write in audit events: names both people when one acts for another."""
        if not self.acting_for_others:
            return self.user.username
        real = self.mapped_user or f"os:{self.os_user}"
        return f"{real} as {self.user.username}"

    def audit_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"os_user": self.os_user}
        if self.acting_for_others:
            details.update(acting_for_others=True, via=self.via, real_user=self.mapped_user)
        return details


def current_os_user() -> str:
    """The OS account of the effective uid, from the password database (not the environment)."""
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid:{os.geteuid()}"


def sandbox_enabled(env: Mapping[str, str], demo: bool = False) -> bool:
    return demo or bool(env.get(SANDBOX_ENV, "").strip())


def resolve_identity(
    os_user: str,
    requested_as: str | None,
    repository: UserDirectory,
    sandbox: bool,
) -> Identity:
    """The identity to act under, or `IdentityRefused` with the reason."""
    mapped = repository.user_for_os_account(os_user)
    mapped_name = mapped.username if mapped is not None else None
    if requested_as is None or (mapped is not None and requested_as == mapped.username):
        if mapped is None:
            hint = " (in the sandbox, pass --as USER)" if sandbox else ""
            raise IdentityRefused(
                f"OS account {os_user!r} is not mapped to a publisher user; add it to "
                f"`os_users` of a user in users.toml{hint}"
            )
        return Identity(mapped, os_user, mapped_name)
    target = repository.get_user(requested_as)
    if target is None:
        raise IdentityRefused(f"--as {requested_as}: no such publisher user")
    if sandbox:
        return Identity(target, os_user, mapped_name, acting_for_others=True, via="sandbox")
    if mapped is not None and mapped.may_act_for_others:
        return Identity(target, os_user, mapped_name, acting_for_others=True, via="delegation")
    who = f"mapped to {mapped_name!r}" if mapped_name else "not mapped to any publisher user"
    raise IdentityRefused(
        f"--as {requested_as}: refused for OS account {os_user!r} ({who}); acting for another "
        "user is allowed only in the sandbox or for a user with may_act_for_others"
    )


def resolve_actor(
    os_user: str,
    requested_as: str | None,
    repository: UserDirectory,
    sandbox: bool,
) -> User:
    """The user whose permissions apply, or `IdentityRefused` (see `resolve_identity`)."""
    return resolve_identity(os_user, requested_as, repository, sandbox).user
