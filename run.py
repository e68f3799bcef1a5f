"""Start the service: `python run.py` (HOST, PORT, WORKERS and RELOAD come from settings)."""

import asyncio
import os
import secrets

import uvicorn

from app.core.config import Settings
from app.services.startup import prepare_from_settings


def main() -> None:
    settings = Settings()
    if not settings.SECRET_KEY.get_secret_value():
        # Every worker must sign with the same key; a throw-away one is shared via the environment.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    asyncio.run(prepare_from_settings(Settings()))
    uvicorn.run(
        "app.asgi:app",
        host=settings.HOST,
        port=settings.PORT,
        workers=None if settings.RELOAD else settings.WORKERS,
        reload=settings.RELOAD,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
