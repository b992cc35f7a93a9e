"""The HTTP surface of `publisher run`: the push intake API, Viber's callbacks, `/healthz` and
`/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from publisher.metrics import Metrics


def make_service_app(
    engine: sa.Engine,
    metrics: Metrics,
    intake: Starlette | None,
    clock: Callable[[], datetime],
    viber: Starlette | None = None,
) -> Starlette:
    """`/healthz` answers 200 only when the database answers; `/intake` takes pushed articles;
    `/viber/webhook/{account}` takes Viber's signed callbacks (publisher.viber_webhook)."""

    async def healthz(request: Request) -> JSONResponse:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            return JSONResponse(
                {"status": "unavailable", "database": type(error).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok", "time": clock().isoformat()})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes: list[Route | Mount] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
    ]
    if intake is not None:
        routes.append(Mount("/intake", app=intake))
    if viber is not None:
        routes.append(Mount("/viber", app=viber))
    return Starlette(routes=routes)
