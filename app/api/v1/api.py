"""Version 1 of the API: its routers, each carrying the /api/v1 prefix itself."""

from fastapi import APIRouter

from app.api.v1.endpoints import auth, email, sessions, users

# Included one level deep into the app: every nesting level costs route matching per request.
# The router tries routes in order on every request, so the ones clients call most come first:
# the profile on every page, refresh every few minutes, the session list now and then. No two
# paths overlap, so the order changes nothing else.
api_v1_routers: tuple[APIRouter, ...] = (
    users.router,
    auth.router,
    sessions.router,
    email.router,
)
