"""The Redis backend on a real three-master Redis Cluster started on loopback ports."""

import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis

from tests.clock import OffsetClock
from tests.conftest import make_settings, serve
from tests.factories import DEFAULT_PASSWORD
from tests.routes import HEALTH, ME, SESSIONS


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = random.randint(20000, 29999)
        with socket.socket() as first, socket.socket() as bus:
            try:
                first.bind(("127.0.0.1", port))
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port() for _ in range(3)]
    nodes = [
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            _wait(Redis(host="127.0.0.1", port=port).ping)
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
        )
        _wait(
            lambda: Redis(host="127.0.0.1", port=ports[0]).cluster("info")["cluster_state"] == "ok"
        )
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.terminate()
            node.wait(timeout=10)


def _wait(ready: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis Cluster did not come up")
        time.sleep(0.1)


async def test_sessions_rotation_revocation_and_limits_on_a_cluster(
    redis_cluster: str, postgres_database: str, tmp_path: Path
) -> None:
    clock = OffsetClock()
    settings = make_settings(
        postgres_database,
        REDIS_URL=redis_cluster,
        REDIS_CLUSTER=True,
        REDIS_KEY_PREFIX=f"cluster{time.monotonic_ns()}",
        RATE_LIMIT_REGISTER="3/minute",
    )
    async with serve(settings, clock) as (app, api):
        sessions = app.services.sessions
        started = clock.now()
        lifetime = timedelta(days=settings.REFRESH_TOKEN_EXPIRE_DAYS)
        user = await api.new_user(email=f"c{time.monotonic_ns()}@example.com")
        other = await api.tokens(user.email, DEFAULT_PASSWORD)
        listed = await api.client.get(SESSIONS, headers=user.headers)
        assert len(listed.json()) == 2
        rotated = await api.refresh(user.tokens.refresh_token)
        assert rotated.status_code == 200
        clock.advance(settings.REFRESH_REUSE_GRACE_SECONDS + 1)
        reused = await api.refresh(user.tokens.refresh_token)
        assert reused.json()["code"] == "refresh_token_reused"
        # The global live index sits in another slot than the sessions and is kept apart.
        assert await sessions.count_live(clock.now()) == 1
        clock.advance(timedelta(days=1).total_seconds())
        assert (await api.refresh(other.refresh_token)).status_code == 200
        assert await sessions.count_live(started + lifetime + timedelta(hours=1)) == 1
        second = await api.tokens(user.email, DEFAULT_PASSWORD)
        changed = await api.client.put(
            ME,
            json={"password": "a cluster-proof password", "current_password": DEFAULT_PASSWORD},
            headers=second.headers,
        )
        assert changed.status_code == 200
        clock.advance(settings.SESSION_CACHE_SECONDS)
        assert (await api.me(second)).status_code == 200
        assert (await api.me(rotated.json()["access_token"])).status_code == 401
        statuses = [(await api.register()).status_code for _ in range(3)]
        assert statuses[-1] == 429
        assert (await api.client.get(HEALTH)).json()["session_store"] == "ok"
