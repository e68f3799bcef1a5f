"""Settings: the seed's names and forms, and refusal of unsafe production settings."""

import warnings
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import Settings
from app.db.engine import async_database_url

STRONG_KEY = "s" * 48


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_seed_defaults() -> None:
    settings = _settings()
    assert "SECRET_KEY is not set; a throw-away key is used" in settings.security_problems()
    assert settings.DATABASE_URL == "sqlite:///./data/auth.db"
    assert settings.ACCESS_TOKEN_EXPIRE_MINUTES == 30
    assert settings.REFRESH_TOKEN_EXPIRE_DAYS == 7
    assert settings.HOST == "127.0.0.1"
    assert settings.PORT == 8000
    assert len(settings.signing_key) >= 32


def test_cors_origins_accept_the_seed_json_array(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", '["http://localhost:3000","https://app.example"]')
    settings = _settings(SECRET_KEY=STRONG_KEY, SECURE_COOKIES=True)
    assert settings.BACKEND_CORS_ORIGINS == ["http://localhost:3000", "https://app.example"]
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "http://a.example, http://b.example")
    assert _settings(SECRET_KEY=STRONG_KEY, SECURE_COOKIES=True).BACKEND_CORS_ORIGINS == [
        "http://a.example",
        "http://b.example",
    ]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"SECRET_KEY": "too-short"},
        {"SECRET_KEY": "your-super-secret-key-change-this-in-production-minimum-32-characters"},
        {"SECRET_KEY": STRONG_KEY, "ADMIN_PASSWORD": "your-secure-password"},
        {"SECRET_KEY": STRONG_KEY, "ADMIN_PASSWORD": "short"},
        {"SECRET_KEY": STRONG_KEY, "BACKEND_CORS_ORIGINS": ["*"]},
        {"SECRET_KEY": STRONG_KEY, "SECURE_COOKIES": False},
    ],
)
def test_production_refuses_weak_or_example_settings(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="refusing to start in production"):
        _settings(ENVIRONMENT="production", **values)


def test_production_accepts_strong_settings() -> None:
    settings = _settings(
        ENVIRONMENT="production",
        SECRET_KEY=STRONG_KEY,
        ADMIN_PASSWORD="a long admin password",
        SECURE_COOKIES=True,
        PUBLIC_URL="https://auth.example.com",
    )
    assert settings.security_problems() == []


def test_development_accepts_them_without_a_warning_and_lists_them() -> None:
    # `python run.py` logs the list once at start-up; a warning would print before logging is set.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = _settings(SECRET_KEY="too-short")
    assert settings.security_problems() == [
        "SECRET_KEY is an example value or shorter than 32 characters",
        "SECURE_COOKIES is false: cookies would travel over plain HTTP",
        "PUBLIC_URL is not https: links in mails would travel in clear",
    ]


def test_production_refuses_a_public_url_without_https() -> None:
    with pytest.raises(ValidationError, match="PUBLIC_URL"):
        _settings(
            ENVIRONMENT="production",
            SECRET_KEY=STRONG_KEY,
            SECURE_COOKIES=True,
            PUBLIC_URL="http://auth.example.com",
        )


def test_blank_optional_settings_mean_unset() -> None:
    settings = _settings(
        SECRET_KEY=STRONG_KEY, SECURE_COOKIES=True, ADMIN_EMAIL="", METRICS_TOKEN=""
    )
    assert settings.ADMIN_EMAIL is None
    assert settings.METRICS_TOKEN is None
    assert settings.admin_credentials is None


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///./data/auth.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@localhost/db", "postgresql+asyncpg"),
        ("postgres://u:p@localhost/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:p@localhost/db", "postgresql+asyncpg"),
    ],
)
def test_plain_database_schemes_map_to_async_drivers(url: str, driver: str) -> None:
    assert async_database_url(url).drivername == driver


@pytest.mark.parametrize(
    "domain", ["example.com; Path=/evil", "example.com\r\nSet-Cookie: x=1", "exa mple.com", "a..b"]
)
def test_a_cookie_domain_must_be_a_host_name(domain: str) -> None:
    with pytest.raises(ValidationError, match="COOKIE_DOMAIN"):
        _settings(SECRET_KEY=STRONG_KEY, SECURE_COOKIES=True, COOKIE_DOMAIN=domain)


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "auth-1.example.co.uk"])
def test_host_names_are_accepted_as_the_cookie_domain(domain: str) -> None:
    settings = _settings(SECRET_KEY=STRONG_KEY, SECURE_COOKIES=True, COOKIE_DOMAIN=domain)
    assert domain == settings.COOKIE_DOMAIN


def test_the_development_preset_relaxes_only_the_budgets_left_unset() -> None:
    relaxed = Settings(_env_file=None, PRESET="development", RATE_LIMIT_LOGIN="7/minute")
    assert relaxed.RATE_LIMIT_LOGIN == "7/minute"
    assert relaxed.RATE_LIMIT_REGISTER == "1000/minute"
    assert relaxed.RATE_LIMIT_API == "100000/minute"
    assert "PRESET=development relaxes the rate limits" in relaxed.security_problems()
    assert Settings(_env_file=None).RATE_LIMIT_REGISTER == "5/minute;20/hour"


def test_production_refuses_the_development_preset() -> None:
    with pytest.raises(ValidationError, match="PRESET=development"):
        Settings(_env_file=None, ENVIRONMENT="production", PRESET="development")


@pytest.mark.parametrize("idle", [1, 29])
def test_an_idle_timeout_shorter_than_an_access_token_is_refused(idle: int) -> None:
    with pytest.raises(ValidationError, match="SESSION_IDLE_TIMEOUT_MINUTES must be 0"):
        _settings(SESSION_IDLE_TIMEOUT_MINUTES=idle, ACCESS_TOKEN_EXPIRE_MINUTES=30)


@pytest.mark.parametrize("idle", [0, 30, 24 * 60])
def test_an_idle_timeout_off_or_as_long_as_an_access_token_is_accepted(idle: int) -> None:
    settings = _settings(SESSION_IDLE_TIMEOUT_MINUTES=idle, ACCESS_TOKEN_EXPIRE_MINUTES=30)
    assert idle == settings.SESSION_IDLE_TIMEOUT_MINUTES


@pytest.mark.parametrize(
    ("overrides", "public_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": 8765}, "http://127.0.0.1:8765"),
        ({"HOST": "0.0.0.0", "PORT": 9000}, "http://127.0.0.1:9000"),  # noqa: S104
        ({"HOST": "::1"}, "http://[::1]:8000"),
        ({"PUBLIC_URL": ""}, "http://127.0.0.1:8000"),
        ({"PUBLIC_URL": "https://auth.example.com/"}, "https://auth.example.com"),
        ({"PUBLIC_URL": "https://example.com/auth", "PORT": 1}, "https://example.com/auth"),
    ],
)
def test_links_start_at_public_url_or_where_the_server_listens(
    overrides: dict[str, object], public_url: str
) -> None:
    assert _settings(**overrides).public_url == public_url
