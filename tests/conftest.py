"""Test-wide guards: no test may reach a real network address."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that would need DNS: refuse


class RealNetworkError(RuntimeError):
    pass


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise RealNetworkError(f"a test tried to reach the real network: {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise RealNetworkError(f"a test tried to reach the real network: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_real_network() -> Any:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


# --- PostgreSQL ---------------------------------------------------------------------------
# Tests marked `postgres` read DATABASE_URL_TEST. Without it they skip with the reason; in CI
# (CI=true or PUBLISHER_REQUIRE_POSTGRES=1) a missing server is a failure, not a skip.


def postgres_required() -> bool:
    import os

    return os.environ.get("CI") == "true" or os.environ.get("PUBLISHER_REQUIRE_POSTGRES") == "1"


@pytest.fixture
def postgres_url() -> Any:
    import os
    import uuid

    import sqlalchemy as sa

    url = os.environ.get("DATABASE_URL_TEST")
    if not url:
        message = "no PostgreSQL: set DATABASE_URL_TEST (scripts/pg-throwaway start DIR prints one)"
        if postgres_required():
            pytest.fail(message + " — required in CI")
        pytest.skip(message)
    # A fresh database per test, so tests never see each other's rows.
    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        if postgres_required():
            pytest.fail(f"PostgreSQL at DATABASE_URL_TEST unreachable: {error}")
        pytest.skip(f"PostgreSQL at DATABASE_URL_TEST unreachable: {error}")
    test_url = url.rsplit("/", 1)[0] + "/" + name
    yield test_url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
