"""The sandbox: every platform's emulator on one ASGI app, with a ledger and fault injection.

Routes (docs/sandbox.md): `/facebook`, `/telegram`, `/youtube`, `/youtube-oauth`, `/zalo`,
`/zalo-oauth`,
`/viber`, `/x` prefixes for the platforms; `/_sandbox/ledger`, `/_sandbox/faults`,
`/_sandbox/tokens/revoke`, `/_sandbox/reset`, `/_sandbox/clock` and `/_sandbox/media/<name>`
for control.
Build one with `make_app()`; mount it in-process with `httpx.ASGITransport(app=app)` or serve
it with `publisher sandbox serve`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from channels.sandbox import facebook, google_oauth, telegram, viber, x, youtube, zalo
from channels.sandbox.core import FaultSpecError, SandboxSettings, SandboxState, parse_faults
from channels.sandbox.samples import SAMPLE_VIDEO, media_bytes, sample_jpeg

# sample media now live in channels.sandbox.samples; kept importable from here
__all__ = ["SAMPLE_VIDEO", "make_app", "sample_jpeg"]


async def ledger(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    if request.method == "DELETE":
        state.ledger.clear()
        return Response(status_code=204)
    platform = request.query_params.get("platform")
    entries = [e.to_json() for e in state.ledger if platform in (None, e.platform)]
    return JSONResponse(entries)


async def faults(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    if request.method == "DELETE":
        state.faults.clear()
        return Response(status_code=204)
    if request.method == "GET":
        return JSONResponse([f.to_json() for f in state.faults])
    try:
        spec = json.loads(await request.body())
        new, seed = parse_faults(spec)
    except (ValueError, FaultSpecError) as error:
        return JSONResponse({"error": str(error)}, status_code=400)
    if request.query_params.get("mode") == "add":
        state.add_faults(new, seed)
    else:
        state.set_faults(new, seed)
    return JSONResponse([f.to_json() for f in state.faults])


async def revoke(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    try:
        body: Any = json.loads(await request.body())
        tokens = body["tokens"]
        if not isinstance(tokens, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": 'body must be {"tokens": [...]}'}, status_code=400)
    state.revoked_tokens.update(str(t) for t in tokens)
    return Response(status_code=204)


async def clock(request: Request) -> Response:
    """`GET` the sandbox's time; `POST {"advance_s": N}` moves it forward (tokens expire,
    quotas reset) without waiting."""
    state: SandboxState = request.app.state.sandbox
    if request.method == "POST":
        try:
            body: Any = json.loads(await request.body())
            seconds = body["advance_s"]
            if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"error": 'body must be {"advance_s": <non-negative number>}'}, status_code=400
            )
        state.advance_clock(float(seconds))
    return JSONResponse({"now": state.now().isoformat()})


async def reset(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    request.app.state.sandbox = SandboxState(state.settings)
    return Response(status_code=204)


async def media(request: Request) -> Response:
    found = media_bytes(request.path_params["name"])
    if found is None:
        return Response("not found", status_code=404)
    data, media_type = found
    return Response(data, media_type=media_type)


def make_app(
    settings: SandboxSettings | None = None,
    fault_spec: Any = None,
    seed: int = 0,
    *,
    callback_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """A fresh sandbox. `fault_spec` (parsed JSON) sets faults at start.

    `callback_transport` is how the sandbox reaches URLs it calls back (Viber's webhook check)
    or fetches (pictures to check): in-process tests mount the publisher's app with
    `httpx.ASGITransport`; None makes real requests (loopback under the tests' network guard).
    """
    app = Starlette(
        routes=[
            Mount("/facebook", routes=facebook.routes),
            Mount("/telegram", routes=telegram.routes),
            Mount("/youtube-oauth", routes=google_oauth.routes),
            Mount("/youtube", routes=youtube.routes),
            Mount("/zalo-oauth", routes=zalo.oauth_routes),
            Mount("/zalo", routes=zalo.routes),
            Mount("/viber", routes=viber.routes),
            Mount("/x", routes=x.routes),
            Route("/_sandbox/ledger", ledger, methods=["GET", "DELETE"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/tokens/revoke", revoke, methods=["POST"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/_sandbox/clock", clock, methods=["GET", "POST"]),
            Route("/_sandbox/media/{name}", media, methods=["GET"]),
        ]
    )
    state = SandboxState(settings, seed=seed)
    if fault_spec is not None:
        state.set_faults(*parse_faults(fault_spec))
    app.state.sandbox = state
    app.state.callback_transport = callback_transport
    return app
