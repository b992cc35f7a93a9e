"""Channel discovery: built-in and third-party plugins from the "publisher.channels" entry points.

Adding a channel = one module with a `Channel` subclass + one entry point
(`[project.entry-points."publisher.channels"] name = "package.module:NameChannel"`); see
docs/channels.md. Nothing is created at import time: the caller hands in the HTTP client.
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import entry_points

import httpx

from channels.base import Channel
from publisher.domain import Platform

GROUP = "publisher.channels"
SANDBOX_ENV = "PUBLISHER_SANDBOX_URL"


class UnknownChannel(LookupError):
    pass


@cache
def channel_classes() -> dict[str, type[Channel]]:
    """Every registered channel class by entry-point name (loaded once)."""
    found: dict[str, type[Channel]] = {}
    for point in entry_points(group=GROUP):
        loaded = point.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Channel)):
            raise TypeError(f"entry point {point.name} = {point.value} is not a Channel subclass")
        found[point.name] = loaded
    return found


def channel_names() -> list[str]:
    return sorted(channel_classes())


def channel_class(name: str) -> type[Channel]:
    """The class registered under `name` (e.g. "zalo"); `UnknownChannel` if there is none."""
    try:
        return channel_classes()[name]
    except KeyError:
        known = ", ".join(channel_names())
        raise UnknownChannel(f"unknown channel {name!r} (known: {known})") from None


def sandbox_url_from_env() -> str | None:
    """`PUBLISHER_SANDBOX_URL` when set (every channel then talks to the sandbox)."""
    value = os.environ.get(SANDBOX_ENV, "").strip()
    return value.rstrip("/") or None


def channel_base_url(cls: type[Channel], sandbox_url: str | None) -> str | None:
    """A channel's `base_url`: `<sandbox>/<prefix>` in sandbox mode, None for the platform."""
    if not sandbox_url:
        return None
    return f"{sandbox_url.rstrip('/')}/{cls.sandbox_prefix or cls.platform.value}"


def load_channels(http: httpx.AsyncClient, base_url: str | None = None) -> dict[Platform, Channel]:
    """One instance of every registered channel. `base_url` is the sandbox root or None."""
    channels: dict[Platform, Channel] = {}
    for cls in channel_classes().values():
        channels[cls.platform] = cls(http, channel_base_url(cls, base_url))
    return channels
