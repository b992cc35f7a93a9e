"""Sending over httpx with every failure classified (shared by the httpx-based channels).

The rule (docs/delivery-design.md): only a failure proven to happen before the platform got
the request is `BEFORE_SEND`; anything after the body may have been written is
`UNKNOWN_OUTCOME`. Connect errors, connect and pool timeouts cannot have sent anything. A read
timeout, a reset, a protocol error or any other OS-level error after the request started
may hide an accepted post. The in-process sandbox signals "accepted but reply lost" by
raising `ConnectionResetError` from the app, which lands in the same branch.
"""

from __future__ import annotations

from typing import Any

import httpx

from channels.base import ErrorKind, SendError

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def classify_transport_error(error: BaseException, *, idempotent: bool) -> SendError:
    """Map an exception raised while sending to a classified `SendError`."""
    if isinstance(error, SendError):
        return error
    if isinstance(error, _NOT_SENT) or idempotent:
        kind = ErrorKind.BEFORE_SEND
        why = "no request reached the platform" if not idempotent else "read-only request"
    else:
        kind = ErrorKind.UNKNOWN_OUTCOME
        why = "the request may have been received"
    return SendError(kind, f"{type(error).__name__}: {error} ({why})")


async def request(
    http: httpx.AsyncClient, method: str, url: str, *, idempotent: bool = False, **kwargs: Any
) -> httpx.Response:
    """`http.request` whose transport failures come back as classified `SendError`s."""
    try:
        return await http.request(method, url, **kwargs)
    except (httpx.TransportError, OSError) as error:
        raise classify_transport_error(error, idempotent=idempotent) from error


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object, or {} when the body is not a JSON object."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def status_5xx(response: httpx.Response, platform: str, *, idempotent: bool) -> SendError:
    """A 5xx reply: on a non-idempotent POST the body was received, so the outcome is unknown
    unless the platform says otherwise (503 with Retry-After on a read is safe to retry)."""
    retry_after = _retry_after_header(response)
    if idempotent:
        return SendError(
            ErrorKind.BEFORE_SEND,
            f"{platform} answered {response.status_code} to a read",
            retry_after=retry_after,
            platform_code=str(response.status_code),
        )
    return SendError(
        ErrorKind.UNKNOWN_OUTCOME,
        f"{platform} answered {response.status_code} after the request was sent",
        platform_code=str(response.status_code),
    )


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def retry_after_header(response: httpx.Response) -> float | None:
    """Seconds from a numeric `Retry-After` header, if any."""
    return _retry_after_header(response)
