"""The safe fetcher: address checks after resolution, pinned connections, redirects, caps."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from publisher.fetch import (
    BlockedAddressError,
    Fetcher,
    FetchError,
    FetchPolicy,
    address_problem,
    checked_addresses,
    fetch,
    fetch_bytes,
    parse_ip_literal,
)

LOCAL = FetchPolicy(allow_private_network=True, timeout_s=5)
PUBLIC_IP = "93.184.216.34"  # what the fake DNS says; the test backend really dials loopback


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- pure address checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("169.254.169.254", "169.254.169.254"),
        ("example.gov.vn", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
    ],
)
def test_ip_spellings(spelling: str, address: str | None) -> None:
    parsed = parse_ip_literal(spelling)
    assert (str(parsed) if parsed else None) == address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "100.127.255.254", "224.0.0.1", "0.0.0.0", "240.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "198.18.0.1",
    ],
)  # fmt: skip
def test_refused_addresses(address: str) -> None:
    problem = address_problem(ipaddress.ip_address(address), allow_private_network=False)
    assert problem is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "203.162.4.190", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_private_network=False) is None


def test_allowlist_opens_loopback_but_never_multicast_or_unspecified() -> None:
    allow = {"allow_private_network": True}
    assert address_problem(ipaddress.ip_address("127.0.0.1"), **allow) is None
    assert address_problem(ipaddress.ip_address("10.0.0.1"), **allow) is None
    assert address_problem(ipaddress.ip_address("224.0.0.1"), **allow) is not None
    assert address_problem(ipaddress.ip_address("0.0.0.0"), **allow) is not None


class FakeResolver:
    """Answers from a script: each lookup of a name takes the next answer."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        script = self.answers[host]
        return script.pop(0) if len(script) > 1 else script[0]


async def test_any_bad_answer_refuses_the_name() -> None:
    resolver = FakeResolver({"mixed.example": [[PUBLIC_IP, "10.0.0.7"]]})
    with pytest.raises(BlockedAddressError, match="private"):
        await checked_addresses("mixed.example", 80, resolver, allow_private_network=False)


async def test_decimal_spelling_in_a_url_is_refused() -> None:
    async with Fetcher() as fetcher:
        for url in ("http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/"):
            with pytest.raises(BlockedAddressError):
                await fetcher.fetch(url, FetchPolicy())


# --- a test backend: "public" addresses are dialled on loopback, and every dial recorded ----


class LoopbackNat(httpcore.AsyncNetworkBackend):
    def __init__(self, port: int) -> None:
        self.port = port
        self.dialled: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        self.dialled.append(host)
        ipaddress.ip_address(host)  # the backend is only ever handed a checked address
        return await self._real.connect_tcp("127.0.0.1", self.port, timeout=timeout)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Any = None,
    ) -> Any:
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _app() -> Starlette:
    async def feed(request: Request) -> Response:
        return PlainTextResponse("<rss/>", headers={"ETag": '"v1"'})

    async def to_internal(request: Request) -> Response:
        return RedirectResponse("http://internal.example/secret", status_code=302)

    async def to_loopback(request: Request) -> Response:
        return RedirectResponse("http://127.0.0.1:1/secret", status_code=301)

    async def hop(request: Request) -> Response:
        n = int(request.path_params["n"])
        return RedirectResponse(f"/hop/{n + 1}", status_code=302)

    return Starlette(routes=[
        Route("/feed", feed), Route("/to-internal", to_internal),
        Route("/to-loopback", to_loopback), Route("/hop/{n}", hop),
    ])  # fmt: skip


async def test_connects_to_the_checked_address_even_if_dns_changes() -> None:
    async with serve(_app()) as base:
        port = int(base.rsplit(":", 1)[1])
        # First answer public, every later one loopback: a rebinding attack.
        resolver = FakeResolver({"portal.example": [[PUBLIC_IP], ["127.0.0.1"]]})
        nat = LoopbackNat(port)
        async with Fetcher(resolver=resolver, inner_backend=nat) as fetcher:
            result = await fetcher.fetch(f"http://portal.example:{port}/feed", FetchPolicy())
            assert result.status == 200
            assert result.content == b"<rss/>"
            assert nat.dialled == [PUBLIC_IP]  # the address that was checked, nothing else
            assert resolver.calls == ["portal.example"]  # one lookup per connection
            # A new connection resolves again; the changed (private) answer is refused.
            await fetcher.aclose()
            with pytest.raises(BlockedAddressError, match="loopback"):
                await fetcher.fetch(f"http://portal.example:{port}/feed", FetchPolicy())
            assert nat.dialled == [PUBLIC_IP]


async def test_every_redirect_is_checked_again() -> None:
    async with serve(_app()) as base:
        port = int(base.rsplit(":", 1)[1])
        resolver = FakeResolver(
            {"portal.example": [[PUBLIC_IP]], "internal.example": [["10.1.2.3"]]}
        )
        nat = LoopbackNat(port)
        async with Fetcher(resolver=resolver, inner_backend=nat) as fetcher:
            with pytest.raises(BlockedAddressError, match=r"10\.1\.2\.3"):
                await fetcher.fetch(f"http://portal.example:{port}/to-internal", FetchPolicy())
            with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1"):
                await fetcher.fetch(f"http://portal.example:{port}/to-loopback", FetchPolicy())
        assert set(nat.dialled) == {PUBLIC_IP}  # the redirect targets were never dialled


async def test_redirects_are_bounded() -> None:
    async with serve(_app()) as base:
        with pytest.raises(FetchError, match="more than 3 redirects") as caught:
            await fetch(f"{base}/hop/0", FetchPolicy(allow_private_network=True, max_redirects=3))
        assert caught.value.kind == "redirects"


async def test_loopback_needs_the_allowlist() -> None:
    async with serve(_app()) as base:
        with pytest.raises(BlockedAddressError, match="loopback"):
            await fetch(f"{base}/feed", FetchPolicy())
        result = await fetch(f"{base}/feed", LOCAL)
        assert result.etag == '"v1"'
        assert await fetch_bytes(f"{base}/feed", policy=LOCAL) == b"<rss/>"


async def test_only_http_and_https() -> None:
    for url in ("file:///etc/passwd", "gopher://x/", "ftp://example.gov.vn/a"):
        with pytest.raises(FetchError) as caught:
            await fetch(url, LOCAL)
        assert caught.value.kind == "url"


def _size_app() -> Starlette:
    async def declared(request: Request) -> Response:
        return Response(b"x" * 2048)

    async def undeclared(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(1000):
                yield b"y" * 1024

        return StreamingResponse(chunks())

    async def slow(request: Request) -> Response:
        async def drip() -> AsyncIterator[bytes]:
            for _ in range(100):
                await asyncio.sleep(0.05)
                yield b"z"

        return StreamingResponse(drip())

    async def not_modified(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v9"':
            return Response(status_code=304, headers={"ETag": '"v9"'})
        return PlainTextResponse("fresh", headers={"ETag": '"v9"', "Last-Modified": "x"})

    async def gone(request: Request) -> Response:
        return PlainTextResponse("no", status_code=404)

    return Starlette(routes=[
        Route("/declared", declared), Route("/undeclared", undeclared), Route("/slow", slow),
        Route("/cond", not_modified), Route("/gone", gone),
    ])  # fmt: skip


async def test_size_cap_declared_and_streamed() -> None:
    policy = FetchPolicy(allow_private_network=True, max_bytes=1024)
    async with serve(_size_app()) as base:
        with pytest.raises(FetchError, match="2048 bytes declared") as caught:
            await fetch(f"{base}/declared", policy)
        assert caught.value.kind == "too_large"
        with pytest.raises(FetchError, match="larger than the cap") as caught:
            await fetch(f"{base}/undeclared", policy)
        assert caught.value.kind == "too_large"


async def test_whole_fetch_deadline() -> None:
    async with serve(_size_app()) as base:
        with pytest.raises(FetchError) as caught:
            await fetch(f"{base}/slow", FetchPolicy(allow_private_network=True, timeout_s=0.3))
        assert caught.value.kind == "timeout"


async def test_conditional_get_and_http_errors() -> None:
    async with serve(_size_app()) as base:
        first = await fetch(f"{base}/cond", LOCAL)
        assert (first.status, first.content, first.etag) == (200, b"fresh", '"v9"')
        second = await fetch(f"{base}/cond", LOCAL, etag=first.etag)
        assert second.not_modified
        assert second.etag == '"v9"'
        with pytest.raises(FetchError, match="HTTP 404"):
            await fetch(f"{base}/gone", LOCAL)
