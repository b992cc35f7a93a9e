"""PostgreSQL for tests: the server named by DATABASE_URL_TEST, one fresh schema per test.

Without DATABASE_URL_TEST (or with the server down) PostgreSQL tests are skipped with the
reason; under CI=true or PUBLISHER_REQUIRE_POSTGRES=1 they fail instead, so a CI run can never
pass by silently skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from publisher.store.engine import make_engine, normalise_url

ENV_VAR = "DATABASE_URL_TEST"


def postgres_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("PUBLISHER_REQUIRE_POSTGRES") == "1"
    )


def _unavailable(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"PostgreSQL is required here (CI / PUBLISHER_REQUIRE_POSTGRES): {reason}")
    pytest.skip(reason)


def postgres_url() -> str:
    """The test server's URL, or skip/fail with the reason."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        _unavailable(f"{ENV_VAR} is not set: no PostgreSQL server for this test")
    url = normalise_url(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        _unavailable(f"PostgreSQL at {ENV_VAR} is unreachable: {str(error).splitlines()[0]}")
    finally:
        engine.dispose()
    return url


@contextmanager
def fresh_schema(url: str, **engine_kwargs: object) -> Iterator[tuple[sa.Engine, str]]:
    """An engine whose connections live in a new, empty schema; dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"}, **engine_kwargs)
    try:
        yield engine, schema
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def schema_url(url: str, schema: str) -> str:
    """A URL that opens `schema` (for subprocesses)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"
