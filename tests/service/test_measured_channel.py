"""`publisher run` wraps every channel in `MeasuredChannel` for metrics. The wrapper must pass
on everything a channel can do: a method it forgets silently falls back to the base class
(e.g. a recall would see every platform as `manual`)."""

from __future__ import annotations

import inspect

from channels.base import Channel
from publisher.service_process import MeasuredChannel

NOT_FORWARDED = {"__init__", "api_base"}  # the wrapper's own construction and URL


def test_every_channel_method_is_forwarded() -> None:
    public = {
        name
        for name, member in inspect.getmembers(Channel)
        if (inspect.isfunction(member) or isinstance(member, property))
        and (not name.startswith("_") or name == "__init__")
    } - NOT_FORWARDED
    missing = sorted(name for name in public if name not in vars(MeasuredChannel))
    assert missing == []


def test_class_attributes_follow_the_inner_channel() -> None:
    from channels.registry import channel_classes

    for cls in channel_classes().values():
        inner = cls.__new__(cls)
        Channel.__init__(inner, http=None, base_url=None)  # type: ignore[arg-type]
        wrapped = MeasuredChannel(inner, metrics=None)  # type: ignore[arg-type]
        for attribute in ("platform", "display_name", "can_read_back", "withdraw_mode"):
            assert getattr(wrapped, attribute) == getattr(cls, attribute), (cls, attribute)
