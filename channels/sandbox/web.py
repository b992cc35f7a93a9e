"""Starlette helpers shared by the emulators."""

from __future__ import annotations

import json
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from channels.sandbox.core import ReplyLost, SandboxState


class LostReply(Response):
    """Start a reply, then fail: in-process the client gets `ReplyLost` (a connection reset);
    under uvicorn the connection closes with the body unfinished."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        raise ReplyLost("sandbox: the post was accepted but the reply was lost")


async def read_params(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Query, form (urlencoded or multipart) or JSON body merged into one dict, plus files."""
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if "application/json" in content_type:
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
            else:
                params["__invalid_json__"] = True
    elif "application/x-www-form-urlencoded" in content_type:
        text = (await request.body()).decode("utf-8", "replace")
        params.update(parse_qsl(text, keep_blank_values=True))
    elif "multipart/form-data" in content_type:
        fields, files = parse_multipart(content_type, await request.body())
        params.update(fields)
    return params, files


def parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """multipart/form-data with the standard library's email parser (python-multipart, which
    Starlette's `request.form()` needs, is not a dependency of this project)."""
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if not message.is_multipart():
        return fields, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if part.get_filename() is not None:
            files[name] = payload
        else:
            charset = part.get_content_charset() or "utf-8"
            fields[name] = payload.decode(charset, "replace")
    return fields, files


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def callback_client(request: Request) -> httpx.AsyncClient:
    """A client for the URLs an emulator calls back or fetches (make_app's
    `callback_transport`; None: real requests)."""
    transport: httpx.AsyncBaseTransport | None = getattr(
        request.app.state, "callback_transport", None
    )
    return httpx.AsyncClient(transport=transport, timeout=10.0)
