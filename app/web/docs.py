"""The API docs, Swagger UI at /docs and ReDoc at /redoc, working without the internet: every
script and style comes from the service. The Swagger UI and ReDoc builds are those the
fastapi-offline package ships (its static files only); the pages around them are ours, with
no inline script."""

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.staticfiles import StaticFiles

from app.api.routing import Caller, declare
from app.web.routing import PageRoute
from app.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
OPENAPI_URL = "/openapi.json"


def asset_mounts() -> list[tuple[str, StaticFiles]]:
    """The pages' own assets, and the vendored Swagger UI and ReDoc builds."""
    vendor = Path(str(files("fastapi_offline") / "static"))
    own = Path(str(files("app.web") / "static"))
    return [
        ("/static/vendor", StaticFiles(directory=vendor)),
        ("/static", StaticFiles(directory=own)),
    ]


@router.get("/docs")
@declare(caller=Caller.ANYONE, stores=False)
async def swagger_ui(request: Request) -> Response:
    return render(
        request, "docs/swagger.html", {"title": request.app.title, "openapi_url": OPENAPI_URL}
    )


@router.get("/redoc")
@declare(caller=Caller.ANYONE, stores=False)
async def redoc(request: Request) -> Response:
    return render(
        request, "docs/redoc.html", {"title": request.app.title, "openapi_url": OPENAPI_URL}
    )
