"""A notification transport that records what it was asked to send."""

from __future__ import annotations

from dataclasses import dataclass, field

from publisher.notify import Notice, NotifyError


@dataclass
class Recording:
    name: str = "recording"
    notices: list[Notice] = field(default_factory=list)
    fail: bool = False

    async def send(self, notice: Notice) -> None:
        if self.fail:
            raise NotifyError("recording: down")
        self.notices.append(notice)
