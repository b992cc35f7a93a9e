"""Schemas of the directory files: units.toml (and the generated units-national.toml),
users.toml, accounts.toml, sources.toml.

Unknown keys are errors (extra="forbid"): a misspelt key must not be silently ignored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from publisher.domain import Platform, Role, SourceKind


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitEntry(Strict):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1, max_length=32)
    parent: str | None = None
    code_list: str | None = None  # default: the file's `code_list`
    short_name: str = ""


class UnitsFile(Strict):
    code_list: str = ""  # the code list most codes in this file come from
    unit: list[UnitEntry] = Field(default_factory=list)


class ReplacedEntry(Strict):
    code: str  # a unit of units.toml (a sample commune)
    by: str  # the official unit that takes its place
    name: str = ""


class NationalUnitsFile(Strict):
    """units-national.toml, written by `publisher units import` (publisher/national.py)."""

    generated_by: str = ""
    code_list: str = ""
    replaced: list[ReplacedEntry] = Field(default_factory=list)
    unit: list[UnitEntry] = Field(default_factory=list)


class GrantEntry(Strict):
    unit: str
    role: Role
    subtree: bool = True


class UserEntry(Strict):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9._-]+$")
    display_name: str = ""
    os_users: list[str] = Field(default_factory=list)
    may_act_for_others: bool = False
    roles: list[GrantEntry] = Field(default_factory=list)


class UsersFile(Strict):
    user: list[UserEntry] = Field(default_factory=list)


# A credential is named, never written inline: "env:NAME", "file:/path" or "store:" (the
# encrypted secret kept in the database, set with the accounts commands).
CREDENTIAL_REF = re.compile(r"^(env:[A-Z_][A-Z0-9_]*|file:/.+|store:)$")


class AccountEntry(Strict):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    unit: str
    platform: Platform
    external_id: str = Field(min_length=1)
    display_name: str = ""
    credentials: str = "store:"
    token_expires_at: datetime | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    # Zalo OA only: tell followers about each article by a broadcast, and how many broadcasts
    # a month the OA's package allows (1, 4 or 6; counted in Vietnam time).
    zalo_broadcast: bool = False
    zalo_package_broadcasts: Literal[1, 4, 6] | None = None

    @model_validator(mode="after")
    def _zalo_broadcast(self) -> AccountEntry:
        if self.platform is not Platform.ZALO and (
            self.zalo_broadcast or self.zalo_package_broadcasts is not None
        ):
            raise ValueError(
                "zalo_broadcast and zalo_package_broadcasts apply to Zalo accounts only"
            )
        if self.zalo_broadcast and self.zalo_package_broadcasts is None:
            raise ValueError(
                "zalo_broadcast = true needs zalo_package_broadcasts (1, 4 or 6 a month, "
                "by the OA's package)"
            )
        return self

    @field_validator("credentials")
    @classmethod
    def _reference_only(cls, value: str) -> str:
        if not CREDENTIAL_REF.match(value):
            raise ValueError(
                "must be a reference (env:VARIABLE, file:/path or store:), never the secret itself"
            )
        return value

    @field_validator("token_expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2027-01-15T00:00:00+07:00")
        return value


class AccountsFile(Strict):
    account: list[AccountEntry] = Field(default_factory=list)


class SourceEntry(Strict):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    unit: str
    kind: SourceKind
    url: str = ""
    article_kind: str = Field(default="article", pattern=r"^(article|directive)$")
    poll_interval_s: int = Field(default=600, ge=30, le=86_400)
    timezone: str = Field(default="+07:00", pattern=r"^[+-]\d{2}:\d{2}$")
    allow_private_network: bool = False
    selectors: dict[str, str] = Field(default_factory=dict)
    category: str | None = None
    push_secret: str | None = None  # for push sources: a reference like accounts' credentials

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("push_secret")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        if value is not None and not CREDENTIAL_REF.match(value):
            raise ValueError("must be a reference (env:VARIABLE, file:/path or store:)")
        return value


class SourcesFile(Strict):
    source: list[SourceEntry] = Field(default_factory=list)
