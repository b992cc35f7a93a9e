"""The safe outbound HTTP fetcher: every URL the project fetches for a source goes through here.

Why it exists: sources (feeds, pages, images named inside them) are URLs written by other
people. Without care a feed could make the server fetch `http://169.254.169.254/` (cloud
metadata), `http://127.0.0.1:5432/` or `http://0x7f000001/`. So:

- the host is resolved first, every answer is checked, and the connection goes to the very
  address that was checked (the resolved IP is pinned inside a custom httpcore network
  backend, so a DNS answer that changes between check and connect cannot be used; TLS still
  uses the URL's host name for SNI and certificate checks, and the Host header is unchanged);
- private, loopback, link-local, carrier-grade NAT (100.64/10), multicast, reserved,
  unspecified and IPv4-mapped IPv6 addresses are refused unless the policy allows the private
  network (sandbox and tests only); decimal, octal and hex IPv4 spellings are understood;
- redirects are followed by hand, bounded, and every hop is checked again;
- bodies are streamed and the download aborts past the size cap; the whole fetch has a deadline.

Public API: `FetchPolicy`, `FetchResult`, `Fetcher` (holds one pooled httpx client),
`fetch(url, policy, etag=, last_modified=)` and `fetch_bytes(url, policy=)`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# httpcore asks `import sniffio` on every lock it takes; when sniffio is not installed each
# attempt walks sys.path (~0.5 ms, four times per request). Caching the absence makes the
# failed import instant and changes nothing else: the import fails either way.
try:
    import sniffio  # noqa: F401
except ImportError:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

USER_AGENT = "vn-portal-publisher/0.1 (+https://github.com/; feed reader)"

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A fetch that failed; `kind` says why in one word, the message says it for people."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class BlockedAddressError(FetchError):
    def __init__(self, message: str) -> None:
        super().__init__("blocked", message)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What one source is allowed to fetch."""

    allow_private_network: bool = False  # sandbox and tests only
    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 20.0  # the whole fetch, redirects included
    connect_timeout_s: float = 5.0
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    accept: str = "*/*"


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str  # the final URL, after redirects
    status: int  # 200, or 304 when the conditional GET says nothing changed
    content: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None
    redirects: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --- addresses ---------------------------------------------------------------------------


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host spelling means, accepting what inet_aton accepts.

    "2130706433", "0x7f.1", "0177.0.0.1" and "127.1" all mean 127.0.0.1 to the C resolver, so
    they must mean it here too. Returns None for a real host name.
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:  # IPv6 zone id: never a public address
        host = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    # inet_aton: the last part fills all the remaining bytes
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def address_problem(address: IPAddress, *, allow_private_network: bool) -> str | None:
    """Why this address may not be fetched, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address.sixtofour is not None or address.teredo is not None:
            return "a tunnelled (6to4/Teredo) IPv6 address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if allow_private_network:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "a non-global address"
    return None


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """getaddrinfo in a thread; returns every address, A and AAAA."""

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise FetchError("dns", f"cannot resolve {host}: {error.strerror}") from error
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    host: str, port: int, resolver: Resolver, *, allow_private_network: bool
) -> list[str]:
    """Resolve `host` and check every answer; any refused answer refuses the host.

    Refusing when one of several answers is bad (rather than picking a good one) closes the
    trick of a name answering both a public and a private address.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        answers: Sequence[str] = [str(literal)]
    else:
        answers = await resolver.resolve(host, port)
    if not answers:
        raise FetchError("dns", f"{host} has no address")
    checked: list[str] = []
    for answer in answers:
        address = parse_ip_literal(answer)
        if address is None:
            raise BlockedAddressError(f"{host} resolved to a non-address {answer!r}")
        problem = address_problem(address, allow_private_network=allow_private_network)
        if problem is not None:
            raise BlockedAddressError(f"{host} resolves to {address}, {problem}: refused")
        checked.append(str(address))
    return checked


# --- the pinned network backend ----------------------------------------------------------


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address itself (no second lookup)."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        allow_private_network: bool,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._allow_private = allow_private_network
        self._inner = inner or httpcore.AnyIOBackend()
        self.connected_to: list[tuple[str, int]] = []  # for tests and diagnostics

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(
            host, port, self._resolver, allow_private_network=self._allow_private
        )
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout, OSError) as error:
                last_error = error
                continue
            self.connected_to.append((address, port))
            return stream
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last_error}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (error mapping, pooling) over the pinned backend."""

    def __init__(
        self, backend: PinnedNetworkBackend, limits: httpx.Limits, ssl_context: ssl.SSLContext
    ) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # Replace the pool so that every new connection goes through the checked backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def _check_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as error:
        raise FetchError("url", f"not a valid URL: {url!r} ({error})") from error
    if parsed.scheme not in ("http", "https"):
        raise FetchError("url", f"only http and https are fetched, not {parsed.scheme!r}: {url}")
    if not parsed.host:
        raise FetchError("url", f"no host in URL: {url}")
    if parsed.userinfo:
        raise FetchError("url", f"credentials in URLs are refused: {url}")
    return parsed


class Fetcher:
    """Pooled clients, one per (policy class, host), reused across fetches.

    Keep one Fetcher for a polling cycle: connections are kept alive between requests to the
    same host, which is what makes thousands of conditional GETs cheap. Pools are per host
    because httpcore's pool does work proportional to its number of connections on every
    request (encode/httpx#3215): many small pools stay fast where one big pool does not.
    """

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        max_connections_per_host: int = 8,
        inner_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver or SystemResolver()
        self._limits = httpx.Limits(
            max_connections=max_connections_per_host,
            max_keepalive_connections=max_connections_per_host,
            keepalive_expiry=30.0,
        )
        self._inner_backend = inner_backend
        # Loading the CA bundle takes ~0.1 s: once per Fetcher, shared by every pool.
        self._ssl_context = ssl.create_default_context()
        self._clients: dict[tuple[bool, str], httpx.AsyncClient] = {}
        self.backends: dict[bool, PinnedNetworkBackend] = {}

    def _client(self, allow_private: bool, host: str) -> httpx.AsyncClient:
        client = self._clients.get((allow_private, host))
        if client is None:
            backend = self.backends.get(allow_private)
            if backend is None:
                backend = PinnedNetworkBackend(
                    resolver=self._resolver,
                    allow_private_network=allow_private,
                    inner=self._inner_backend,
                )
                self.backends[allow_private] = backend
            client = httpx.AsyncClient(
                transport=_PinnedTransport(backend, self._limits, self._ssl_context),
                follow_redirects=False,
                trust_env=False,
            )
            self._clients[(allow_private, host)] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def fetch(
        self,
        url: str,
        policy: FetchPolicy,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        try:
            async with asyncio.timeout(policy.timeout_s):
                return await self._fetch(url, policy, etag, last_modified)
        except TimeoutError as error:
            raise FetchError(
                "timeout", f"{url}: no complete answer in {policy.timeout_s:g} s"
            ) from error

    async def _fetch(
        self, url: str, policy: FetchPolicy, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        headers = {"User-Agent": policy.user_agent, "Accept": policy.accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        timeout = httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s)
        current = url
        hops: list[str] = []
        while True:
            target = _check_url(current)
            client = self._client(policy.allow_private_network, f"{target.host}:{target.port}")
            try:
                request = client.build_request("GET", target, headers=headers, timeout=timeout)
                response = await client.send(request, stream=True)
            except FetchError:
                raise
            except httpx.TimeoutException as error:
                raise FetchError(
                    "timeout", f"{current}: timed out ({type(error).__name__})"
                ) from error
            except httpx.HTTPError as error:
                raise FetchError(
                    "network", f"{current}: {type(error).__name__}: {error}"
                ) from error
            try:
                if response.status_code in _REDIRECT_CODES:
                    await _drain(response)
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError("http", f"{current}: redirect without a Location")
                    if len(hops) >= policy.max_redirects:
                        raise FetchError(
                            "redirects", f"{url}: more than {policy.max_redirects} redirects"
                        )
                    current = urljoin(current, location.strip())
                    hops.append(current)
                    continue
                if response.status_code == 304:
                    await _drain(response)
                    return FetchResult(
                        url=current,
                        status=304,
                        etag=response.headers.get("etag") or etag,
                        last_modified=response.headers.get("last-modified") or last_modified,
                        redirects=tuple(hops),
                    )
                if response.status_code >= 400:
                    raise FetchError("http", f"{current}: HTTP {response.status_code}")
                content = await _read_capped(response, policy.max_bytes, current)
                return FetchResult(
                    url=current,
                    status=response.status_code,
                    content=content,
                    content_type=response.headers.get("content-type", ""),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    redirects=tuple(hops),
                    headers=dict(response.headers),
                )
            finally:
                await response.aclose()


async def _drain(response: httpx.Response, cap: int = 65536) -> None:
    """Read a body we do not need (redirect, 304) to its end, so that the keep-alive
    connection goes back to the pool instead of being closed. Bounded: past `cap` the
    connection is simply dropped."""
    total = 0
    try:
        async for chunk in response.aiter_raw():
            total += len(chunk)
            if total > cap:
                return
    except httpx.HTTPError:
        return


async def _read_capped(response: httpx.Response, cap: int, url: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise FetchError("too_large", f"{url}: {int(declared)} bytes declared, cap is {cap}")
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in response.aiter_bytes():  # decoded (gzip) bytes: the cap is on these
            total += len(chunk)
            if total > cap:
                raise FetchError("too_large", f"{url}: body larger than the cap of {cap} bytes")
            chunks.append(chunk)
    except httpx.DecodingError as error:
        raise FetchError("network", f"{url}: undecodable body ({error})") from error
    except httpx.TimeoutException as error:
        raise FetchError("timeout", f"{url}: body timed out") from error
    except httpx.HTTPError as error:
        raise FetchError("network", f"{url}: {type(error).__name__}: {error}") from error
    return b"".join(chunks)


async def fetch(
    url: str,
    policy: FetchPolicy,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """One conditional GET through the safe fetcher (a temporary Fetcher if none is given)."""
    if fetcher is not None:
        return await fetcher.fetch(url, policy, etag=etag, last_modified=last_modified)
    async with Fetcher() as own:
        return await own.fetch(url, policy, etag=etag, last_modified=last_modified)


async def fetch_bytes(
    url: str, *, policy: FetchPolicy | None = None, fetcher: Fetcher | None = None
) -> bytes:
    """The body of `url`, safely (for images and other media named by articles)."""
    result = await fetch(url, policy or FetchPolicy(), fetcher=fetcher)
    return result.content


FetchFunction = Callable[..., Awaitable[FetchResult]]


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
