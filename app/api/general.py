"""Unversioned routes: service info, health and metrics."""

import asyncio
import hmac

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import ContextDep, bearer_token_of, get_admin, get_principal
from app.api.metrics import Metrics

router = APIRouter(tags=["general"])
HEALTH_TIMEOUT_SECONDS = 3.0


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


@router.get("/health", responses={503: {"description": "A store the service needs is down"}})
async def health(context: ContextDep) -> JSONResponse:
    """Liveness and the state of each store; 503 when one the service needs is down."""
    checks = {"database": context.ping_database, "session_store": context.sessions.ping}
    states: dict[str, str] = {}
    for name, ping in checks.items():
        try:
            await asyncio.wait_for(ping(), timeout=HEALTH_TIMEOUT_SECONDS)
            states[name] = "ok"
        except Exception:
            states[name] = "down"
    healthy = all(state == "ok" for state in states.values())
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
