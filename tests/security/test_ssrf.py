"""Outbound requests (feeds, pages, images) never reach private, loopback or metadata addresses.

Tests `publisher.fetch` (the ingestion engineer's safe fetcher) from the outside: a recording
network backend stands in for the real sockets, so a refused fetch proves no connection was
even attempted, and a "public" address is served by a server on 127.0.0.1 so redirects can be
followed for real without leaving the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpcore
import pytest

from publisher.fetch import BlockedAddressError, Fetcher, FetchError, FetchPolicy

PUBLIC = "93.184.216.34"  # a public address; tests route it to a loopback server


class FakeResolver:
    """DNS answers from a table; each name may answer differently on each lookup."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = {name: list(answers) for name, answers in table.items()}
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.table.get(host)
        if not answers:
            raise FetchError("dns", f"cannot resolve {host}")
        return answers.pop(0) if len(answers) > 1 else answers[0]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records every address the fetcher connects to. `PUBLIC` goes to a loopback server;
    anything else fails, so a test can see whether a connection was attempted at all."""

    def __init__(self, loopback_port: int | None = None) -> None:
        self.connects: list[tuple[str, int]] = []
        self.loopback_port = loopback_port
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host == PUBLIC and self.loopback_port is not None:
            return await self.inner.connect_tcp("127.0.0.1", self.loopback_port, timeout=timeout)
        raise httpcore.ConnectError(f"test backend: no route to {host}")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def resolver_for_names() -> FakeResolver:
    return FakeResolver(
        {
            "internal.example": [["10.1.2.3"]],
            "metadata.example": [["169.254.169.254"]],
            "mixed.example": [[PUBLIC, "127.0.0.1"]],
            "v6loop.example": [["::1"]],
            "mapped.example": [["::ffff:10.0.0.1"]],
            "cgnat.example": [["100.64.0.1"]],
            "public.example": [[PUBLIC]],
        }
    )


# Every spelling of an address the server itself, its network or the cloud metadata service
# may answer on. Each must be refused without a connection being attempted.
REFUSED_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:5432/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/",
    "http://10.255.255.254/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.0.1/",
    "http://192.168.255.254/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0177.0.0.1/",  # octal
    "http://0x7f000001/",  # hex
    "http://0x7f.0.0.1/",
    "http://127.1/",  # short form
    "http://127.0.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://[::]/",
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://224.0.0.1/",
    "http://internal.example/",
    "http://metadata.example/",
    "http://mixed.example/",  # one good and one bad answer: refused
    "http://v6loop.example/",
    "http://mapped.example/",
    "http://cgnat.example/",
    "http://nowhere.example/",  # does not resolve
    "https://127.0.0.1/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://127.0.0.1/",
    "http://user:pass@public.example/",
    "http://public.example@127.0.0.1/",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_dangerous_urls_are_refused_before_any_connection(url: str) -> None:
    backend = RecordingBackend()
    async with Fetcher(resolver=resolver_for_names(), inner_backend=backend) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.fetch(url, FetchPolicy(timeout_s=5))
    assert backend.connects == []


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/", "http://2130706433/", "http://[::1]/", "http://169.254.169.254/"],
)
async def test_address_refusals_say_why(url: str) -> None:
    async with Fetcher(resolver=resolver_for_names(), inner_backend=RecordingBackend()) as f:
        with pytest.raises(BlockedAddressError, match=r"refused|loopback|link-local"):
            await f.fetch(url, FetchPolicy(timeout_s=5))


async def test_dns_answer_changing_between_check_and_connect_cannot_be_used() -> None:
    """Rebinding: the first lookup says public, later ones say loopback. The fetcher looks up
    once per connection and connects to the very address it checked."""
    resolver = FakeResolver({"rebind.example": [[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]]})
    backend = RecordingBackend()
    async with Fetcher(resolver=resolver, inner_backend=backend) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.fetch("http://rebind.example/feed", FetchPolicy(timeout_s=5))
    assert backend.connects == [(PUBLIC, 80)]
    assert resolver.lookups == ["rebind.example"]


async def test_sandbox_allowlist_lets_loopback_through_but_never_metadata_tricks() -> None:
    policy = FetchPolicy(allow_private_network=True, timeout_s=5)
    backend = RecordingBackend()
    async with Fetcher(resolver=resolver_for_names(), inner_backend=backend) as fetcher:
        with pytest.raises(FetchError, match="no route"):  # allowed: it tried to connect
            await fetcher.fetch("http://127.0.0.1:8765/", policy)
        for url in ("http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/"):
            with pytest.raises(BlockedAddressError):
                await fetcher.fetch(url, policy)
    assert backend.connects == [("127.0.0.1", 8765)]


# --- a real server on loopback that "is" the public address ---------------------------------


class Server:
    def __init__(self) -> None:
        self.port = 0
        self.routes: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.stall = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            self.requests.append(path)
            if self.stall:
                await asyncio.sleep(30)
            writer.write(
                self.routes.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
        listener.close()


def redirect(location: str) -> bytes:
    return (
        f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://0x7f000001/",
        "http://internal.example/",
        "http://[::ffff:10.0.0.1]/",
        "file:///etc/passwd",
    ],
)
async def test_every_redirect_is_checked_again(server: Server, target: str) -> None:
    server.routes["/feed"] = redirect("/hop")
    server.routes["/hop"] = redirect(target)
    backend = RecordingBackend(server.port)
    async with Fetcher(resolver=resolver_for_names(), inner_backend=backend) as fetcher:
        with pytest.raises(FetchError):
            await fetcher.fetch("http://public.example/feed", FetchPolicy(timeout_s=5))
    assert server.requests == ["/feed", "/hop"]  # both public hops were really followed
    assert all(host == PUBLIC for host, _ in backend.connects)


async def test_a_public_fetch_works_through_the_same_path(server: Server) -> None:
    body = b"<rss version='2.0'><channel><title>ok</title></channel></rss>"
    server.routes["/feed"] = redirect("/rss")
    server.routes["/rss"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    backend = RecordingBackend(server.port)
    async with Fetcher(resolver=resolver_for_names(), inner_backend=backend) as fetcher:
        result = await fetcher.fetch("http://public.example/feed", FetchPolicy(timeout_s=5))
    assert result.content == body
    assert result.redirects == ("http://public.example/rss",)


async def test_size_cap_declared_and_streamed(server: Server) -> None:
    big = b"x" * 5000
    server.routes["/declared"] = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" + big
    )
    server.routes["/chunked"] = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"".join(b"3e8\r\n" + b"y" * 1000 + b"\r\n" for _ in range(5))
        + b"0\r\n\r\n"
    )
    policy = FetchPolicy(max_bytes=1024, timeout_s=5)
    async with Fetcher(
        resolver=resolver_for_names(), inner_backend=RecordingBackend(server.port)
    ) as f:
        for path in ("/declared", "/chunked"):
            with pytest.raises(FetchError) as caught:
                await f.fetch(f"http://public.example{path}", policy)
            assert caught.value.kind == "too_large"


async def test_whole_fetch_deadline(server: Server) -> None:
    server.stall = True
    policy = FetchPolicy(timeout_s=0.5, connect_timeout_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Fetcher(
        resolver=resolver_for_names(), inner_backend=RecordingBackend(server.port)
    ) as f:
        with pytest.raises(FetchError) as caught:
            await f.fetch("http://public.example/slow", policy)
    assert caught.value.kind == "timeout"
    assert loop.time() - started < 3


async def test_redirect_loops_are_bounded(server: Server) -> None:
    server.routes["/a"] = redirect("/b")
    server.routes["/b"] = redirect("/a")
    async with Fetcher(
        resolver=resolver_for_names(), inner_backend=RecordingBackend(server.port)
    ) as f:
        with pytest.raises(FetchError) as caught:
            await f.fetch("http://public.example/a", FetchPolicy(max_redirects=4, timeout_s=5))
    assert caught.value.kind == "redirects"
    assert len(server.requests) == 5
