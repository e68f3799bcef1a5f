"""Version 1 of the API: its routers, each carrying the /api/v1 prefix itself."""

from fastapi import APIRouter

from app.api.v1.endpoints import auth, sessions, users

# Included one level deep into the app: every nesting level costs route matching per request.
api_v1_routers: tuple[APIRouter, ...] = (auth.router, users.router, sessions.router)
