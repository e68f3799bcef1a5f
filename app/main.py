"""The application factory: the one place where stores, services and routes are wired."""

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig

from app import __version__
from app.api.deps import ServiceApp, Services
from app.api.edge.body_limit import BodyLimit
from app.api.edge.request_context import RequestContext
from app.api.edge.request_log import RequestLog
from app.api.edge.security_headers import SecurityHeaders
from app.api.errors import install_error_handlers
from app.api.general import router as general_router
from app.api.metrics import Metrics
from app.api.openapi import install_openapi
from app.api.v1.api import api_v1_routers
from app.core.clock import Clock, SystemClock
from app.core.config import Settings
from app.core.devices import prepare_parser
from app.core.events import AuditLog, EventFanout
from app.core.logging import configure_logging
from app.core.passwords import PasswordHasher
from app.core.tokens import HmacSigner, TokenCodec
from app.mail.render import renderer_from_settings
from app.mail.transport import transport_from_settings
from app.services.accounts import AccountServices
from app.services.activity import RecentSignIns
from app.services.audit_trail import AuditTrail
from app.services.auth import AuthService, SessionTokens
from app.services.authentication import Authenticator
from app.services.bootstrap import prepare_database
from app.services.health import Health
from app.services.mail_delivery import MailDelivery
from app.services.passwords import PasswordPolicy
from app.services.rate_limit import RateLimiter
from app.storage.factory import DATABASE, SESSION_STORE, build_storage
from app.web import account, admin, docs
from app.web.errors import error_page

# FastAPI looks for configured OpenTelemetry providers on every request unless all three
# signals are off.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
_TAGS = [
    {"name": "auth", "description": "Accounts, sign-in, token refresh and sign-out."},
    {"name": "users", "description": "Your profile, and user management for admins."},
    {"name": "sessions", "description": "Your signed-in devices."},
    {"name": "general", "description": "Service information, health and metrics."},
]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
) -> ServiceApp:
    """Build the service from explicit settings (the environment and `.env` by default); tests
    and benchmarks may bring their own clock and password hasher."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    storage = build_storage(settings)
    metrics = Metrics()
    recent_sign_ins = RecentSignIns(clock)
    trail = AuditTrail(storage.audit, clock)
    events = EventFanout(metrics, AuditLog(), recent_sign_ins, trail)
    hasher = hasher or PasswordHasher.from_settings(settings)
    passwords = PasswordPolicy.from_settings(settings)
    codec = TokenCodec(
        signer=HmacSigner(settings.signing_key, settings.JWT_ALGORITHM),
        issuer=settings.JWT_ISSUER,
        audience=settings.JWT_AUDIENCE,
        leeway=timedelta(seconds=settings.JWT_LEEWAY_SECONDS),
    )
    limiter = RateLimiter(settings, storage.rate_limits, storage.rate_limit_guard)
    accounts = AccountServices.build(
        settings,
        storage,
        hasher=hasher,
        passwords=passwords,
        limiter=limiter,
        events=events,
        trail=trail,
        clock=clock,
    )
    delivery = MailDelivery(
        mail=storage.mail,
        emails=accounts.emails,
        renderer=renderer_from_settings(settings),
        transport=transport_from_settings(settings),
        events=events,
        clock=clock,
        poll_seconds=settings.MAIL_POLL_SECONDS,
        retry_max_seconds=settings.MAIL_RETRY_MAX_SECONDS,
        give_up_after=timedelta(hours=settings.MAIL_GIVE_UP_HOURS),
        # Without a mail server, a developer follows the links from the log; a production log
        # must never hold a token that signs someone in.
        log_links=settings.SMTP_HOST is None and settings.ENVIRONMENT != "production",
    )
    services = Services(
        authenticator=Authenticator(tokens=codec, liveness=accounts.liveness, clock=clock),
        auth=AuthService(
            users=storage.users,
            sessions=storage.sessions,
            liveness=accounts.liveness,
            hasher=hasher,
            passwords=passwords,
            tokens=SessionTokens.from_settings(settings, codec),
            limiter=limiter,
            lockout=accounts.lockout,
            emails=accounts.emails,
            mail_requests=accounts.mail_requests,
            events=events,
            clock=clock,
            require_verified=settings.REQUIRE_VERIFIED_EMAIL,
            notify_new_device=settings.NOTIFY_NEW_DEVICE,
        ),
        emails=accounts.emails,
        mail_requests=accounts.mail_requests,
        users=accounts.users,
        sessions=accounts.sessions,
        limiter=limiter,
        health=Health(
            {DATABASE: storage.users.ping, SESSION_STORE: storage.sessions.ping},
            seconds=settings.STORE_DEADLINE_SECONDS,
        ),
        events=events,
        metrics=metrics,
        recent_sign_ins=recent_sign_ins,
        settings=settings,
        csrf_key=settings.signing_key,
        metrics_token=settings.METRICS_TOKEN.get_secret_value() if settings.METRICS_TOKEN else None,
    )

    @asynccontextmanager
    async def lifespan(_: ServiceApp) -> AsyncIterator[None]:
        try:
            await prepare_database(storage, settings=settings, hasher=hasher, clock=clock)
            prepare_parser()
            # Everything still alive now (libraries, models, the app) lives as long as the
            # process. Frozen, the collector stops scanning it: a full collection of it is a
            # pause that every request in flight would wait out.
            gc.collect()
            gc.freeze()
            stop_background = asyncio.Event()
            background = asyncio.gather(delivery.run(stop_background), trail.run(stop_background))
            try:
                yield
            finally:
                stop_background.set()
                # A round stuck on a hung store is not waited for beyond its deadline.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(background, settings.STORE_DEADLINE_SECONDS * 2)
        finally:
            hasher.close()
            await passwords.aclose()
            await storage.close()

    app = ServiceApp(
        title=settings.PROJECT_NAME,
        version=__version__,
        lifespan=lifespan,
        telemetry=None if settings.OPENTELEMETRY_ENABLED else TELEMETRY_OFF,
        # Slash redirects would build their URL from the request's Host header, which the
        # client chooses; a 404 names the served path instead.
        redirect_slashes=False,
        # The docs list the groups in this order, whatever order the routers are matched in.
        openapi_tags=_TAGS,
        # Served by app.web.docs, with every asset from the service.
        docs_url=None,
        redoc_url=None,
    )
    app.services = services
    install_error_handlers(app, page=error_page)
    install_openapi(app, settings)
    for router in (*api_v1_routers, general_router, account.router, admin.router, docs.router):
        app.include_router(router)
    for path, files in docs.asset_mounts():
        app.mount(path, files)
    # The edge, innermost first (each layer added wraps the ones before it).
    app.add_middleware(BodyLimit, max_body_bytes=settings.MAX_BODY_BYTES)
    app.add_middleware(RequestLog, metrics=metrics)
    app.add_middleware(
        SecurityHeaders, hsts_max_age=settings.HSTS_MAX_AGE_SECONDS if settings.HTTPS_ONLY else None
    )
    app.add_middleware(
        RequestContext,
        trusted_proxies=settings.TRUSTED_PROXIES,
        forwarded_header=settings.FORWARDED_HEADER,
        store_deadline_seconds=settings.STORE_DEADLINE_SECONDS,
    )
    # CORS goes outside the edge, so that preflights are answered before anything else.
    if settings.BACKEND_CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.BACKEND_CORS_ORIGINS,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"],
            expose_headers=["Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-ID"],
        )
    return app
