"""Unversioned routes: service info, health and metrics."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import context_of
from app.api.metrics import Metrics
from app.api.routing import Caller, DeclaredRoute, declare
from app.core.errors import StoreUnavailable
from app.storage.guard import REQUEST_DEADLINE, Deadline

router = APIRouter(tags=["general"], route_class=DeclaredRoute)


@router.get("/")
@declare(caller=Caller.ANYONE, stores=False)
async def root(request: Request) -> dict[str, str]:
    """What this service is and where its documentation lives."""
    return {
        "name": request.app.title,
        "version": request.app.version,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/health",
        "api": "/api/v1",
    }


async def _probe(ping: Callable[[], Awaitable[None]], seconds: float) -> str:
    # Each store gets a deadline of its own: one that hangs must not eat the other's time.
    REQUEST_DEADLINE.set(Deadline(seconds))
    try:
        await ping()
    except StoreUnavailable as unavailable:
        return "slow" if unavailable.timed_out else "down"
    return "ok"


@router.get(
    "/health",
    responses={503: {"description": "A store is down or slower than its deadline"}},
)
@declare(caller=Caller.ANYONE, stores=False)
async def health(request: Request) -> JSONResponse:
    """Liveness and the state of each store (`ok`, `down` or `slow`); 503 unless all are ok."""
    context = context_of(request)
    checks = {"database": context.users.ping, "session_store": context.sessions.ping}
    seconds = context.settings.STORE_DEADLINE_SECONDS
    # Probed side by side, each as a task of its own, so that /health answers within one
    # deadline even when every store hangs.
    results = await asyncio.gather(*(_probe(ping, seconds) for ping in checks.values()))
    states = dict(zip(checks, results, strict=True))
    healthy = all(state == "ok" for state in results)
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", **states},
        status_code=200 if healthy else 503,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
@declare(caller=Caller.METRICS_READER)
async def metrics(request: Request) -> Response:
    """Prometheus metrics; for admins, or with `Authorization: Bearer $METRICS_TOKEN`."""
    context = context_of(request)
    registry: Metrics = request.app.state.metrics
    now = context.clock.now()
    body = await registry.render(lambda: context.sessions.count_live(now))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
