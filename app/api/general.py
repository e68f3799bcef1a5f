"""Unversioned routes: service info, health and metrics."""

import asyncio
import hmac
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import ContextDep, bearer_token_of, get_admin, get_principal
from app.api.metrics import Metrics
from app.core.errors import StoreUnavailable
from app.storage.guard import REQUEST_DEADLINE, Deadline

router = APIRouter(tags=["general"])


@router.get("/")
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
    responses={
        503: {"description": "A store the service needs is down or slower than its deadline"}
    },
)
async def health(context: ContextDep) -> JSONResponse:
    """Liveness and the state of each store (`ok`, `down` or `slow`); 503 unless all are ok."""
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


async def _metrics_reader(request: Request, context: ContextDep) -> None:
    token = bearer_token_of(request)
    expected = context.settings.METRICS_TOKEN
    if (
        token
        and expected
        and hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), expected.get_secret_value().encode()
        )
    ):
        return
    await get_admin(await get_principal(request))


@router.get(
    "/metrics",
    dependencies=[Depends(_metrics_reader)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request, context: ContextDep) -> Response:
    """Prometheus metrics; for admins, or with `Authorization: Bearer $METRICS_TOKEN`."""
    registry: Metrics = request.app.state.metrics
    now = context.clock.now()
    body = await registry.render(lambda: context.sessions.count_live(now))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
