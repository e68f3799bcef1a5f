"""Settings read from the environment and `.env`."""

import ipaddress
import json
import secrets
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EXAMPLE_SECRET_KEYS = frozenset(
    {
        "your-super-secret-key-change-this-in-production-minimum-32-characters",
        "change-me",
        "changeme",
        "secret",
    }
)
EXAMPLE_ADMIN_PASSWORDS = frozenset(
    {"your-secure-password", "change-this-admin-password", "admin", "password", "changeme"}
)
MIN_SECRET_KEY_LENGTH = 32
# PRESET=development: budgets a developer clicking through a front end never meets. Only the
# budgets the environment and .env leave unset take these values.
DEVELOPMENT_PRESET = {
    "RATE_LIMIT_MAIL": "1000/minute",
    "RATE_LIMIT_LOGIN": "1000/minute",
    "RATE_LIMIT_REGISTER": "1000/minute",
    "RATE_LIMIT_REFRESH": "1000/minute",
    "RATE_LIMIT_API": "100000/minute",
}


def _valid_rate_limit(text: str) -> str:
    try:
        parse_many(text)
    except ValueError as exc:
        raise ValueError(f"not a rate limit in `limits` notation (like 5/minute): {text}") from exc
    return text


RateLimitText = Annotated[str, AfterValidator(_valid_rate_limit)]


def _is_unspecified(host: str) -> bool:
    """Whether `host` means every interface (0.0.0.0, ::), which a link cannot point at."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    ENVIRONMENT: Literal["development", "test", "production"] = "development"
    PRESET: Literal["none", "development"] = "none"
    PROJECT_NAME: str = "FastAPI Auth Service"

    HOST: str = "127.0.0.1"
    PORT: int = Field(default=8000, ge=1, le=65535)
    WORKERS: int = Field(default=1, ge=1, le=64)
    RELOAD: bool = False

    SECRET_KEY: SecretStr = SecretStr("")
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    JWT_ISSUER: str = "fastapi-auth-service"
    JWT_AUDIENCE: str = "fastapi-auth-service"
    JWT_LEEWAY_SECONDS: int = Field(default=10, ge=0, le=300)
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=30, ge=1, le=24 * 60)
    REFRESH_TOKEN_EXPIRE_DAYS: int = Field(default=7, ge=1, le=365)
    REFRESH_REUSE_GRACE_SECONDS: int = Field(default=10, ge=0, le=120)
    SESSION_CACHE_SECONDS: float = Field(default=1.0, ge=0, le=1.0)

    DATABASE_URL: str = "sqlite:///./data/auth.db"
    DATABASE_ECHO: bool = False
    DATABASE_POOL_SIZE: int = Field(default=10, ge=1, le=200)
    DATABASE_MAX_OVERFLOW: int = Field(default=10, ge=0, le=200)

    REDIS_URL: str | None = None
    REDIS_CLUSTER: bool = False
    REDIS_KEY_PREFIX: str = Field(default="auth", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    REDIS_MAX_CONNECTIONS: int = Field(default=100, ge=1, le=10_000)

    ADMIN_EMAIL: str | None = None
    ADMIN_USERNAME: str | None = None
    ADMIN_PASSWORD: SecretStr | None = None

    BACKEND_CORS_ORIGINS: Annotated[list[str], NoDecode] = Field(default_factory=list)

    PASSWORD_HASH_SCHEME: Literal["argon2id", "bcrypt"] = "argon2id"
    ARGON2_MEMORY_COST_KIB: int = Field(default=19456, ge=8192, le=1048576)
    ARGON2_TIME_COST: int = Field(default=2, ge=1, le=10)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1, le=16)
    BCRYPT_ROUNDS: int = Field(default=12, ge=10, le=16)
    PASSWORD_HASH_CONCURRENCY: int = Field(default=0, ge=0, le=256)
    PASSWORD_MIN_LENGTH: int = Field(default=8, ge=8, le=64)
    PASSWORD_MAX_LENGTH: int = Field(default=256, ge=64, le=1024)

    METRICS_TOKEN: SecretStr | None = None

    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_STRATEGY: Literal["moving-window", "sliding-window-counter", "fixed-window"] = (
        "sliding-window-counter"
    )
    RATE_LIMIT_LOGIN: RateLimitText = "10/minute"
    RATE_LIMIT_REGISTER: RateLimitText = "5/minute;20/hour"
    RATE_LIMIT_REFRESH: RateLimitText = "30/minute"
    RATE_LIMIT_API: RateLimitText = "600/minute"
    LOGIN_LOCKOUT_THRESHOLD: int = Field(default=5, ge=0, le=1000)
    LOGIN_LOCKOUT_SECONDS: int = Field(default=900, ge=1, le=86400)
    TRUSTED_PROXIES: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    FORWARDED_HEADER: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"

    SECURE_COOKIES: bool = False
    COOKIE_SAMESITE: Literal["lax", "strict", "none"] = "lax"
    # A host name (optionally with a leading dot); anything else could add cookie attributes.
    COOKIE_DOMAIN: str | None = Field(
        default=None, max_length=253, pattern=r"^\.?([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$"
    )
    HTTPS_ONLY: bool = False
    HSTS_MAX_AGE_SECONDS: int = Field(default=31_536_000, ge=0)
    MAX_BODY_BYTES: int = Field(default=65_536, ge=1024, le=16 * 1024 * 1024)
    MAX_HEADER_BYTES: int = Field(default=16_384, ge=1024, le=1024 * 1024)
    MAX_HEADER_COUNT: int = Field(default=100, ge=10, le=10_000)
    REQUEST_READ_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=600)
    MAX_CONNECTIONS: int = Field(default=1000, ge=1, le=100_000)
    STORE_DEADLINE_SECONDS: float = Field(default=3.0, ge=0.1, le=60)

    HIBP_ENABLED: bool = False
    HIBP_API_URL: str = Field(
        default="https://api.pwnedpasswords.com/range/", pattern=r"^https?://[^\s]+/$"
    )
    HIBP_TIMEOUT_SECONDS: float = Field(default=2.0, gt=0, le=30)
    HIBP_FAIL_CLOSED: bool = False

    PUBLIC_URL: str | None = Field(
        default=None, pattern=r"^https?://[A-Za-z0-9.\[\]:-]+(/[^\s?#]*)?$"
    )
    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: SecretStr | None = None
    SMTP_SECURITY: Literal["none", "starttls", "tls"] = "starttls"
    SMTP_CA_FILE: str | None = None
    SMTP_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0, le=300)
    MAIL_FROM: str = Field(default="FastAPI Auth Service <no-reply@localhost>", max_length=254)
    MAIL_FOLDER: str = "./data/mail"
    MAIL_TEMPLATES_DIR: str | None = None
    MAIL_POLL_SECONDS: float = Field(default=1.0, ge=0.05, le=3600)
    MAIL_RETRY_MAX_SECONDS: float = Field(default=300.0, ge=0.1, le=86400)
    MAIL_GIVE_UP_HOURS: float = Field(default=72.0, gt=0, le=720)
    REQUIRE_VERIFIED_EMAIL: bool = False
    VERIFY_TOKEN_MINUTES: int = Field(default=1440, ge=5, le=10080)
    RESET_TOKEN_MINUTES: int = Field(default=30, ge=5, le=1440)
    EMAIL_CHANGE_TOKEN_MINUTES: int = Field(default=1440, ge=5, le=10080)
    EMAIL_TOKEN_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=100)
    NOTIFY_NEW_DEVICE: bool = False
    RATE_LIMIT_MAIL: RateLimitText = "5/minute;20/hour"
    AUDIT_RETENTION_DAYS: int = Field(default=365, ge=1, le=36_500)
    SESSION_ABSOLUTE_LIFETIME_DAYS: int = Field(default=30, ge=0, le=3650)
    SESSION_IDLE_TIMEOUT_MINUTES: int = Field(default=0, ge=0, le=525_600)

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    LOG_FORMAT: Literal["json", "text"] = "json"
    OPENTELEMETRY_ENABLED: bool = False

    @field_validator("LOG_FORMAT", mode="before")
    @classmethod
    def _console_is_text(cls, value: object) -> object:
        # Accepted so that .env files written for earlier versions keep working.
        return "text" if value == "console" else value

    @field_validator("BACKEND_CORS_ORIGINS", "TRUSTED_PROXIES", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator(
        "ADMIN_EMAIL",
        "ADMIN_USERNAME",
        "ADMIN_PASSWORD",
        "METRICS_TOKEN",
        "COOKIE_DOMAIN",
        "PUBLIC_URL",
        "SMTP_HOST",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_CA_FILE",
        "MAIL_TEMPLATES_DIR",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("PRESET") == "development":
            return {**DEVELOPMENT_PRESET, **data}
        return data

    @model_validator(mode="after")
    def _check_secrets(self) -> "Settings":
        if self.COOKIE_SAMESITE == "none" and not self.SECURE_COOKIES:
            raise ValueError("COOKIE_SAMESITE=none requires SECURE_COOKIES=true")
        problems = self.security_problems()
        # Outside production they are allowed: `python run.py` logs them once at start-up.
        if problems and self.ENVIRONMENT == "production":
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _check_session_policy(self) -> "Settings":
        # Use of a session is seen when it is refreshed, and a client busy with an access token
        # has no reason to refresh before the token expires: a shorter idle timeout would end
        # sessions in use.
        idle = self.SESSION_IDLE_TIMEOUT_MINUTES
        if idle and idle < self.ACCESS_TOKEN_EXPIRE_MINUTES:
            raise ValueError(
                "SESSION_IDLE_TIMEOUT_MINUTES must be 0 (off) or at least "
                f"ACCESS_TOKEN_EXPIRE_MINUTES ({self.ACCESS_TOKEN_EXPIRE_MINUTES})"
            )
        return self

    def security_problems(self) -> list[str]:
        """List the reasons these settings are unsafe for production."""
        problems: list[str] = []
        key = self.SECRET_KEY.get_secret_value()
        if not key:
            problems.append("SECRET_KEY is not set; a throw-away key is used")
        elif key in EXAMPLE_SECRET_KEYS or len(key) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"SECRET_KEY is an example value or shorter than {MIN_SECRET_KEY_LENGTH} characters"
            )
        if self.ADMIN_PASSWORD is not None:
            password = self.ADMIN_PASSWORD.get_secret_value()
            if password in EXAMPLE_ADMIN_PASSWORDS or len(password) < 12:
                problems.append("ADMIN_PASSWORD is an example value or shorter than 12 characters")
        if "*" in self.BACKEND_CORS_ORIGINS:
            problems.append("BACKEND_CORS_ORIGINS allows every origin")
        if not self.SECURE_COOKIES:
            problems.append("SECURE_COOKIES is false: cookies would travel over plain HTTP")
        if self.PRESET == "development":
            problems.append("PRESET=development relaxes the rate limits")
        if not self.public_url.startswith("https://"):
            problems.append("PUBLIC_URL is not https: links in mails would travel in clear")
        return problems

    @cached_property
    def signing_key(self) -> str:
        """The JWT key: SECRET_KEY, or a per-process random key when it is unset."""
        return self.SECRET_KEY.get_secret_value() or secrets.token_urlsafe(48)

    @property
    def public_url(self) -> str:
        """Where people reach the service, without a trailing slash: PUBLIC_URL, or unset, the
        address `python run.py` serves on, so that a development server's links follow its
        PORT."""
        if self.PUBLIC_URL:
            return self.PUBLIC_URL.rstrip("/")
        host = "127.0.0.1" if _is_unspecified(self.HOST) else self.HOST
        return f"http://{f'[{host}]' if ':' in host else host}:{self.PORT}"

    @cached_property
    def admin_credentials(self) -> tuple[str, str, str] | None:
        """Email, username and password of the default admin, when all three are set."""
        if self.ADMIN_EMAIL and self.ADMIN_USERNAME and self.ADMIN_PASSWORD:
            return (
                self.ADMIN_EMAIL,
                self.ADMIN_USERNAME,
                self.ADMIN_PASSWORD.get_secret_value(),
            )
        return None
