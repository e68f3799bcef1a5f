"""`python run.py` with several workers, their logs, and graceful shutdown on SIGTERM."""

import json
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.conftest import REDIS_TEST_PREFIX, REDIS_TEST_URL
from tests.factories import ADMIN_EMAIL, ADMIN_PASSWORD, DEFAULT_PASSWORD
from tests.routes import LOGIN, METRICS, REGISTER, USERS
from tests.servers import RUN_PY, free_port, running_server


def _admin_headers(url: str) -> dict[str, str]:
    login = httpx.post(f"{url}{LOGIN}", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def _register(url: str, count: int) -> None:
    for index in range(count):
        with httpx.Client() as client:
            response = client.post(
                f"{url}{REGISTER}",
                json={
                    "email": f"worker{index}.{time.monotonic_ns()}@example.com",
                    "username": f"w{time.monotonic_ns()}",
                    "password": DEFAULT_PASSWORD,
                },
            )
            assert response.status_code == 201, response.text


def test_four_workers_on_the_embedded_backends(tmp_path: Path) -> None:
    settings = {"WORKERS": "4", "RATE_LIMIT_REGISTER": "1000/minute"}
    with running_server(tmp_path, settings, command=RUN_PY) as (url, _):
        _register(url, 12)
        headers = _admin_headers(url)
        admins = httpx.get(f"{url}{USERS}?is_admin=true", headers=headers).json()
        assert admins["total"] == 1
        metrics = httpx.get(f"{url}{METRICS}", headers=headers).text
        assert "auth_registrations_total 12.0" in metrics
        assert 'auth_logins_total{outcome="success"} 1.0' in metrics
    log = (tmp_path / "server.log").read_text()
    assert "embedded_backends_with_several_workers" in log
    assert log.count("default_admin_created") == 1


def test_four_workers_share_limits_through_redis(postgres_database: str, tmp_path: Path) -> None:
    settings = {
        "WORKERS": "4",
        "DATABASE_URL": postgres_database,
        "REDIS_URL": REDIS_TEST_URL,
        "REDIS_KEY_PREFIX": f"{REDIS_TEST_PREFIX}:workers{time.monotonic_ns()}",
        "RATE_LIMIT_LOGIN": "5/minute",
        "LOGIN_LOCKOUT_THRESHOLD": "0",
    }
    with running_server(tmp_path, settings, command=RUN_PY) as (url, _):
        statuses = []
        for _ in range(6):
            with httpx.Client() as client:
                response = client.post(
                    f"{url}{LOGIN}",
                    json={"email": "nobody@example.com", "password": "wrong password"},
                )
                statuses.append(response.status_code)
        assert statuses == [401] * 5 + [429]
    assert "embedded_backends_with_several_workers" not in (tmp_path / "server.log").read_text()


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    settings = {"ARGON2_MEMORY_COST_KIB": "262144", "ARGON2_TIME_COST": "6"}
    with running_server(tmp_path, settings, command=RUN_PY) as (url, process):
        email = f"slow{time.monotonic_ns()}@example.com"
        registered = httpx.post(
            f"{url}{REGISTER}",
            json={"email": email, "username": "slowhasher", "password": DEFAULT_PASSWORD},
            timeout=30,
        )
        assert registered.status_code == 201
        answers: list[int] = []

        def login() -> None:
            response = httpx.post(
                f"{url}{LOGIN}",
                json={"email": email, "password": DEFAULT_PASSWORD},
                timeout=30,
            )
            answers.append(response.status_code)

        in_flight = threading.Thread(target=login)
        started = time.monotonic()
        in_flight.start()
        time.sleep(0.15)
        process.send_signal(signal.SIGTERM)
        in_flight.join(timeout=30)
        assert answers == [200]
        # uvicorn re-raises the signal once the graceful shutdown is over.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert time.monotonic() - started > 0.15


def test_every_line_two_workers_write_is_one_json_object(tmp_path: Path) -> None:
    settings = {
        "WORKERS": "2",
        "LOG_LEVEL": "INFO",
        # Allowed outside production, and logged once at start-up.
        "SECURE_COOKIES": "false",
        # A Redis where nothing listens: rate-limited requests fail closed, and the worker serving
        # each one logs the store's unavailability while serving it.
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "STORE_DEADLINE_SECONDS": "0.2",
    }
    with running_server(tmp_path, settings, command=RUN_PY, health_status=503) as (url, _):
        for _ in range(4):
            with httpx.Client() as client:
                response = client.post(
                    f"{url}{LOGIN}", json={"email": "a@example.com", "password": "x"}
                )
                assert response.status_code == 503
        assert httpx.get(url).status_code == 200
        address = urlsplit(url)
        with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 400")
    events = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    assert all(isinstance(event, dict) and event["level"] and event["event"] for event in events)
    started = {event["event"] for event in events if event["event"].startswith("Started server")}
    assert len(started) == 2
    assert [event["event"] for event in events].count("insecure_settings") == 1
    unavailable = [event for event in events if event["logger"] == "app.errors"]
    access = [event for event in events if event["event"] == "request"]
    assert unavailable
    assert [event["path"] for event in access].count(LOGIN) == 4
    assert all(len(event["request_id"]) == 32 for event in unavailable + access)
    assert {event["request_id"] for event in unavailable} <= {
        event["request_id"] for event in access
    }
    assert any(event["event"] == "Invalid HTTP request received." for event in events)
