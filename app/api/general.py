"""Unversioned routes: service info, health and metrics."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import services_of
from app.api.routing import Caller, DeclaredRoute, declare

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


@router.get(
    "/health",
    responses={503: {"description": "A store is down or slower than its deadline"}},
)
@declare(caller=Caller.ANYONE, stores=False)
async def health(request: Request) -> JSONResponse:
    """Liveness and the state of each store (`ok`, `down` or `slow`); 503 unless all are ok."""
    states = await services_of(request).health.states()
    healthy = all(state == "ok" for state in states.values())
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
    services = services_of(request)
    body = await services.metrics.render(services.sessions.count_live)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
