"""Rate limits shared by every worker: per channel account and per platform.

The slots live in the database (`rate_limit` rows), so workers on many machines respect one
limit. A platform's own "wait N seconds" is recorded the same way (`hold`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from publisher.store.delivery_sql import account_key, platform_key


@dataclass(frozen=True, slots=True)
class RateLimits:
    # Minimum seconds between two posts on one account, per platform key ("facebook": 60).
    account_gap_s: Mapping[str, float] = field(default_factory=dict)
    # Minimum seconds between two posts on one platform across all accounts.
    platform_gap_s: Mapping[str, float] = field(default_factory=dict)

    def gaps_for(self, platform: str, account_id: str) -> dict[str, float]:
        gaps: dict[str, float] = {}
        account_gap = self.account_gap_s.get(platform, 0.0)
        if account_gap > 0:
            gaps[account_key(account_id)] = account_gap
        platform_gap = self.platform_gap_s.get(platform, 0.0)
        if platform_gap > 0:
            gaps[platform_key(platform)] = platform_gap
        return gaps
