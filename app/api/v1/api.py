"""Version 1 of the API, mounted under /api/v1."""

from fastapi import APIRouter

from app.api.v1.endpoints import auth, sessions, users

api_router = APIRouter()
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(sessions.router)
