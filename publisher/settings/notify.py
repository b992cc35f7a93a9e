"""Schema of `notify.toml`: who is told about problems, over which channel, and webhooks.

Secrets (bot token, SMTP password, webhook secret) are references, never values:
"env:VARIABLE" or "file:/path" (a file only its owner may read). `resolve_secret` reads them.
See docs/notifications.md for a sample.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SECRET_REF = re.compile(r"^(env:[A-Z_][A-Z0-9_]*|file:/.+)$")
WEBHOOK_EVENTS = ("sent", "failed", "needs_review", "expired", "alert")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _secret_reference(value: str) -> str:
    if not SECRET_REF.match(value):
        raise ValueError(
            "must be a reference (env:VARIABLE or file:/path), never the secret itself"
        )
    return value


class TelegramSettings(Strict):
    bot_token: str
    # The Bot API root; point it at the sandbox (`<PUBLISHER_SANDBOX_URL>/telegram`) in tests.
    api_base: str = "https://api.telegram.org"
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("bot_token")
    @classmethod
    def _token_reference(cls, value: str) -> str:
        return _secret_reference(value)

    @field_validator("api_base")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class EmailSettings(Strict):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"
    sender: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("password")
    @classmethod
    def _password_reference(cls, value: str | None) -> str | None:
        return None if value is None else _secret_reference(value)

    @model_validator(mode="after")
    def _login_pair(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class Contact(Strict):
    """Where one person (`user`) or one unit's shared inbox (`unit`) is reached."""

    user: str | None = None
    unit: str | None = None
    email: list[str] = Field(default_factory=list)
    telegram_chat: str | None = None

    @model_validator(mode="after")
    def _one_owner(self) -> Contact:
        if (self.user is None) == (self.unit is None):
            raise ValueError("give exactly one of user or unit")
        if not self.email and not self.telegram_chat:
            raise ValueError("give an email address or a telegram_chat")
        return self

    @field_validator("email")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


class WebhookSettings(Strict):
    url: str
    secret: str
    events: list[str] = Field(default_factory=lambda: ["sent", "failed", "needs_review"])
    max_attempts: int = Field(default=4, ge=1, le=10)
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("secret")
    @classmethod
    def _secret_is_reference(cls, value: str) -> str:
        return _secret_reference(value)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(f"unknown events {unknown}; known: {', '.join(WEBHOOK_EVENTS)}")
        return value


NotifyChannel = Literal["telegram", "email", "webhook"]
_EMAIL: NotifyChannel = "email"


class NotifyFile(Strict):
    """The whole of notify.toml. Every section is optional: nothing configured, nobody told
    (the service then logs each notice it could not send)."""

    channels: list[NotifyChannel] = Field(default_factory=lambda: [_EMAIL])
    token_horizon_days: int = Field(default=14, ge=0, le=365)
    telegram: TelegramSettings | None = None
    email: EmailSettings | None = None
    contact: list[Contact] = Field(default_factory=list)
    webhook: list[WebhookSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _channels_configured(self) -> NotifyFile:
        if "telegram" in self.channels and self.telegram is None:
            raise ValueError("channels lists telegram but there is no [telegram] section")
        if "email" in self.channels and self.email is None and self.contact:
            raise ValueError("channels lists email but there is no [email] section")
        if "webhook" in self.channels and not any("alert" in w.events for w in self.webhook):
            raise ValueError('channels lists webhook but no [[webhook]] takes "alert" events')
        return self


class SecretError(Exception):
    """A secret reference that cannot be read; the message names the reference, not a value."""


def resolve_secret(reference: str, environ: Mapping[str, str] | None = None) -> str:
    """The value behind "env:NAME" or "file:/path" (surrounding whitespace removed)."""
    from publisher import redact
    from publisher.secrets import SecretsError, read_secret_file

    env = environ if environ is not None else os.environ
    if reference.startswith("env:"):
        name = reference[4:]
        value = env.get(name)
        if not value:
            raise SecretError(f"{reference}: environment variable {name} is not set")
    elif reference.startswith("file:"):
        try:
            value = read_secret_file(Path(reference[5:]))
        except SecretsError as error:
            raise SecretError(f"{reference}: {error}") from None
    else:
        raise SecretError(f"{reference}: not a secret reference (env:VARIABLE or file:/path)")
    value = value.strip()
    redact.register_secret(value)
    return value
