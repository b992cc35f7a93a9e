"""Resolving unknown outcomes: ask the platform, never resend blindly.

An `unknown` delivery (the call may or may not have reached the platform) is claimed as
`reconciling`; a channel that can read back looks for a post with the recorded body hash:
found → `sent` with its id; proven absent → `pending` (safe to send again); a channel that
cannot read back → `needs_review` (a person checks). A failed read-back leaves it `unknown`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from channels.base import Channel, Credentials, SendError
from publisher.delivery.jobs import DeliveryStore
from publisher.domain import ChannelAccount, DeliveryState

log = logging.getLogger("publisher.delivery")


async def reconcile_once(
    store: DeliveryStore,
    channels: Mapping[str, Channel],
    accounts: Callable[[str], ChannelAccount | None],
    credentials: Callable[[ChannelAccount], Credentials],
    *,
    owner: str,
    now: datetime,
    limit: int = 50,
    lease_s: float = 60.0,
) -> dict[str, int]:
    """One round over unknown deliveries; returns how many went to each state."""
    resolved: dict[str, int] = {}
    for job in store.claim_unknown(owner, now, limit, lease_s):
        channel = channels.get(job.platform)
        account = accounts(job.account_id)
        receipt = None
        if channel is None or account is None or job.body_hash is None:
            state, note = DeliveryState.NEEDS_REVIEW, "cannot look it up: a person must check"
        elif not channel.can_read_back:
            state = DeliveryState.NEEDS_REVIEW
            note = f"{channel.display_name} cannot read back posts: a person must check"
        else:
            try:
                receipt = await channel.find_published(
                    account, credentials(account), job.body_hash, since=job.created_at
                )
            except (SendError, OSError) as error:
                log.warning("delivery %s: read-back failed: %s", job.id, error)
                store.resolve(job, DeliveryState.UNKNOWN, now, note=f"read-back failed: {error}")
                resolved["unknown"] = resolved.get("unknown", 0) + 1
                continue
            if receipt is not None:
                state, note = DeliveryState.SENT, "found on the platform"
            else:
                state, note = DeliveryState.PENDING, "proven absent on the platform"
        if store.resolve(job, state, now, receipt=receipt, note=note):
            resolved[state.value] = resolved.get(state.value, 0) + 1
    return resolved
