"""Keep secrets out of logs, errors, audit details, previews and exports.

Two defences, both applied by `redact(text)`:
- known values: every secret the process resolves or stores is registered
  (`register_secret`) and replaced wherever it appears, whatever its shape;
- shapes: strings that look like tokens are replaced even when nobody registered them —
  `access_token=…`-style parameters and JSON fields, `Authorization:` headers and bearer
  tokens, Telegram `bot<digits>:<token>`, Facebook Graph `EAA…`, Google `ya29.…`.

`RedactingFilter` is a `logging.Filter` for handlers; `install()` also wraps the log record
factory so that every record made anywhere in the process is scrubbed when it is created.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

MASK = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter values would scrub ordinary words; real tokens are far longer

_lock = threading.Lock()
_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None

# Names whose values are secret, in query strings, forms, headers, JSON and Python reprs.
SECRET_NAMES = (
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|app[_-]?secret|"
    r"secret[_-]?key|api[_-]?key|auth[_-]?token|x-viber-auth-token|password|passwd|"
    r"secret|token|signature|appsecret_proof"
)
_NAMED = re.compile(
    r"(?i)(?P<name>[\"']?\b(?:" + SECRET_NAMES + r")\b[\"']?)"
    r"(?P<sep>\s*[=:]\s*[\"']?|\s*=\s*)"
    r"(?P<value>(?!\[redacted\])[^\s&\"',;}<>)\]]+)"
)
_AUTH_HEADER = re.compile(
    r"(?i)(?P<name>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?:(?:bearer|basic|digest|oauth|token|bot)\s+)?[^\s\"',;}]+)"
)
_SHAPES = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{10,}"),  # Telegram bot API URL path
    re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token on its own
    re.compile(r"\bEAA[A-Za-z0-9]{20,}"),  # Facebook Graph API tokens
    re.compile(r"\bya29\.[A-Za-z0-9._-]{10,}"),  # Google OAuth access tokens
)


def register_secret(value: str | None) -> None:
    """Remember a secret value so that `redact` replaces it everywhere."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    global _known_pattern
    with _lock:
        if value in _known:
            return
        _known.add(value)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def forget_all_secrets() -> None:
    """For tests: drop every registered value."""
    global _known_pattern
    with _lock:
        _known.clear()
        _known_pattern = None


def redact(text: str) -> str:
    """`text` with every known secret and every token-looking string replaced by a mask."""
    if not text:
        return text
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _AUTH_HEADER.sub(lambda m: m.group("name") + MASK, text)
    text = _NAMED.sub(lambda m: m.group("name") + m.group("sep") + MASK, text)
    for shape in _SHAPES:
        text = shape.sub(MASK, text)
    return text


_SECRET_KEY = re.compile(r"(?i)^(?:" + SECRET_NAMES + r"|authorization|credentials?)$")


def redact_value(value: Any) -> Any:
    """A JSON-like value with secret-named fields masked and every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            key: (MASK if isinstance(key, str) and _SECRET_KEY.match(key) else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """Scrubs a record's message, exception text and stack before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def scrub_record(record: logging.LogRecord) -> None:
    if getattr(record, "_publisher_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep what we can show safely
        message = f"{record.msg!s} {record.args!r}"
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._publisher_redacted = True


_installed = False


def install(root: logging.Logger | None = None) -> None:
    """Scrub every log record in this process (idempotent).

    A filter on a logger does not see records propagated from its children, so the record
    factory is wrapped too: a record is scrubbed as soon as it exists, whoever logs it.
    """
    global _installed
    target = root or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if _installed:
        return
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
