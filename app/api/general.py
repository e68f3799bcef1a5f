"""Unversioned routes: service info, health and metrics."""

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import ContextDep, bearer_token, get_admin, get_principal
from app.api.metrics import Metrics

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


@router.get("/health", responses={503: {"description": "A store is unreachable"}})
async def health(context: ContextDep) -> JSONResponse:
    """Liveness and the state of each store; 503 when one the service needs is down."""
    try:
        await context.sessions.ping()
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


async def _metrics_reader(
    request: Request, context: ContextDep, token: Annotated[str | None, Depends(bearer_token)]
) -> None:
    expected = context.settings.METRICS_TOKEN
    if token and expected and hmac.compare_digest(token, expected.get_secret_value()):
        return
    await get_admin(await get_principal(request, context, token))


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
