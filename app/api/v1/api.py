"""Version 1 of the API: its routers, each carrying the /api/v1 prefix itself."""

from fastapi import APIRouter

from app.api.v1.endpoints import auth, sessions, users

# Included one level deep into the app: every nesting level costs route matching per request.
# The router tries routes in order on every request, so the ones every client calls all the
# time (the profile and the session list) come first; no two paths overlap, so the order
# changes nothing else.
api_v1_routers: tuple[APIRouter, ...] = (users.router, sessions.router, auth.router)
