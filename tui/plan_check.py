"""Check a plan CSV against what the core knows (no Textual here: the CLI uses it too)."""

from __future__ import annotations

import re
from datetime import datetime

from publisher.domain import User
from publisher.plan_import import PlanResult, parse_plan
from tui.ports import Backend


def check_plan_file(backend: Backend, user: User, text: str, now: datetime) -> PlanResult:
    """Parse against the user's units and the stored articles the file mentions."""
    units = {u.code for u in backend.units(user)}
    candidates = [int(n) for n in re.findall(r"^\s*\"?(\d+)", text, flags=re.MULTILINE)]
    articles = backend.existing_articles(candidates)
    return parse_plan(text, units, articles, now)
