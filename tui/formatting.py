"""How values are shown: dd/mm/yyyy, 24-hour, Asia/Ho_Chi_Minh; states and errors in words."""

from __future__ import annotations

from datetime import datetime

from publisher.domain import VIETNAM_TZ
from tui.i18n import _

POST_STATES = {
    "awaiting_approval": "Awaiting approval",
    "approved": "Approved",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
    "recalled": "Recalled",
}
WITHDRAWAL_STATES = {
    "pending": "Waiting to withdraw",
    "claimed": "Withdrawing",
    "withdrawing": "Withdrawing",
    "withdrawn": "Withdrawn",
    "needs_manual_removal": "Remove by hand",
    "failed": "Withdrawal failed",
    "not_sent": "Never sent",
}
DELIVERY_STATES = {
    "awaiting_approval": "Awaiting approval",
    "pending": "Scheduled",
    "claimed": "Claimed",
    "sending": "Sending",
    "sent": "Sent",
    "retry_wait": "Waiting to retry",
    "failed": "Failed",
    "unknown": "Unknown outcome",
    "reconciling": "Reconciling",
    "needs_review": "Needs review",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "paused": "Paused",
    "none": "No channel",
    "mixed": "Mixed",
}
# One glyph per delivery state, for dense tables (the legend is on screen).
STATE_GLYPHS = {
    "awaiting_approval": "?",
    "pending": "◷",
    "claimed": "…",
    "sending": "…",
    "sent": "✓",
    "retry_wait": "↻",
    "failed": "✗",
    "unknown": "!",
    "reconciling": "!",
    "needs_review": "!",
    "cancelled": "–",
    "expired": "⌛",
    "paused": "‖",
}
KINDS = {"directive": "Directive", "article": "Article"}
PLATFORMS = {
    "facebook": "Facebook",
    "youtube": "YouTube",
    "zalo": "Zalo OA",
    "viber": "Viber",
    "telegram": "Telegram",
    "x": "X",
}
PLATFORM_SHORT = {
    "facebook": "FB",
    "youtube": "YT",
    "zalo": "ZL",
    "viber": "VB",
    "telegram": "TG",
    "x": "X",
}
ERROR_KINDS = {
    "auth": "The access token expired or was revoked: renew it on the channel account.",
    "rate_limited": "The platform limits how often we post: it will be retried later.",
    "before_send": "The platform could not be reached (nothing was sent): safe to retry.",
    "unknown_outcome": (
        "We do not know whether it was published: it is checked on the platform before any resend."
    ),
    "permanent": (
        "The platform refused the post (content or permission): fix it and retry, or cancel."
    ),
}


def when(moment: datetime | None) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time ("—" when unset)."""
    if moment is None:
        return "—"
    return moment.astimezone(VIETNAM_TZ).strftime("%d/%m/%Y %H:%M")


def day(moment: datetime) -> str:
    return moment.astimezone(VIETNAM_TZ).strftime("%d/%m/%Y")


def clock(moment: datetime) -> str:
    return moment.astimezone(VIETNAM_TZ).strftime("%H:%M")


def post_state(state: str) -> str:
    return _(POST_STATES.get(state, state))


def withdrawal_state(state: str) -> str:
    return _(WITHDRAWAL_STATES.get(state, state))


def delivery_state(state: str) -> str:
    return _(DELIVERY_STATES.get(state, state))


def kind(value: str) -> str:
    return _(KINDS.get(value, value))


def platform(value: str) -> str:
    return PLATFORMS.get(value, value)


def duration(seconds: float | None) -> str:
    """A lag as people say it: 45 s, 12 min, 3 h 05, 2 d 4 h."""
    if seconds is None:
        return "—"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} {_('min')}"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d}"
    return f"{s // 86400} {_('d')} {s % 86400 // 3600} h"


def error_in_words(error_kind: str | None, last_error: str | None) -> str:
    """The platform's error in plain words, with the platform's own message after it."""
    plain = _(ERROR_KINDS[error_kind]) if error_kind in ERROR_KINDS else ""
    detail = (last_error or "").strip()
    if plain and detail:
        return f"{plain} ({detail})"
    return plain or detail or _("No error recorded.")
