"""Start the service: `python run.py` (HOST, PORT, WORKERS and RELOAD come from settings)."""

import asyncio
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from app.core.config import Settings
from app.core.logging import configure_logging, get_logger
from app.server import serve
from app.services.bootstrap import prepare_from_settings


def _share_across_workers(settings: Settings) -> None:
    """Set up what several worker processes must have in common, and say what they do not."""
    if not settings.SECRET_KEY.get_secret_value():
        # Every worker must sign with the same key; a throw-away one is shared via the environment.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    if settings.WORKERS > 1:
        metrics_dir = os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR",
            str(Path(tempfile.gettempdir()) / f"auth-metrics-{os.getpid()}"),
        )
        shutil.rmtree(metrics_dir, ignore_errors=True)
        Path(metrics_dir).mkdir(parents=True)
        if not settings.REDIS_URL:
            get_logger("app").warning(
                "embedded_backends_with_several_workers",
                workers=settings.WORKERS,
                shared="users, sessions, revocations, the login lockout and metrics",
                per_worker="rate limits (each worker grants the full budget); set REDIS_URL to "
                "share them",
            )


def main() -> None:
    settings = Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    _share_across_workers(settings)
    asyncio.run(prepare_from_settings(Settings()))
    serve(settings)


if __name__ == "__main__":
    main()
