"""Benchmark the service against a bare FastAPI endpoint, on one worker each, with wrk.

    .venv/bin/python bench/benchmark.py                    # SQLite + embedded stores
    .venv/bin/python bench/benchmark.py --backend production   # PostgreSQL + Redis on 127.0.0.1
    .venv/bin/python bench/benchmark.py --seed 100000      # with 100 000 users and sessions stored

It prints figures and asserts nothing. wrk comes from the OS packages (`apt-get install wrk`).
"""

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import insert, make_url, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.passwords import PasswordHasher  # noqa: E402
from app.core.tokens import new_token_id  # noqa: E402
from app.domain.sessions import SessionRecord  # noqa: E402
from app.models import User  # noqa: E402
from app.storage.factory import build_storage  # noqa: E402
from app.storage.sql_sessions import SqlSessionStore  # noqa: E402

WRK = ROOT / "bench" / "wrk"
PASSWORD = "benchmark password 2026"
UNLIMITED = "1000000000/minute"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_BENCH_DATABASE = "auth_service_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
PROBE_RATE = 50


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        return float("nan")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(
    url: str, *, duration: int, connections: int, threads: int, script: str, env: dict[str, str]
) -> WrkResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(WRK / script),
        url,
    ]
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, **env}
    ).stdout
    if os.environ.get("BENCH_VERBOSE"):
        print(output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(errors.group(1)) if errors else 0
    if socket_errors:
        failed += sum(int(count) for count in socket_errors.groups())
    return WrkResult(rps, p50, p99, failed, requests)


def median_round(rounds: list[WrkResult]) -> WrkResult:
    """The round with the median throughput."""
    return sorted(rounds, key=lambda result: result.requests_per_second)[len(rounds) // 2]


def paced_probe(url: str, *, access_token: str, per_second: int, duration: float) -> WrkResult:
    """Latency of requests sent at a fixed rate, each timed from when it was due.

    A closed loop (wrk with one connection) would measure throughput, not latency: it keeps a
    core busy with its own requests and waits out every slow answer before sending the next.
    Timing from the scheduled send also counts the wait behind a slow answer.

    The probe shares the cores with the login storm it runs beside, so its client is the
    standard library's: httpx cost about 560 µs of CPU a request here and http.client about
    160, and at 50 requests a second the difference was 2 % of the machine taken from the
    storm that is being measured.
    """
    interval = 1 / per_second
    latencies: list[float] = []
    errors = 0
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.netloc, timeout=10)
    headers = {"Authorization": f"Bearer {access_token}"}
    try:
        started = time.perf_counter()
        for index in range(int(duration * per_second)):
            due = started + index * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                connection.request("GET", target.path, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                ok = False
            latencies.append((time.perf_counter() - due) * 1000)
            errors += not ok
    finally:
        connection.close()
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return WrkResult(
        requests_per_second=len(latencies) / duration,
        p50_ms=statistics.median(latencies),
        p99_ms=quantiles[98],
        errors=errors,
        requests=len(latencies),
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CpuSeconds:
    hashing: float
    server: float
    machine: float

    def __sub__(self, earlier: "CpuSeconds") -> "CpuSeconds":
        return CpuSeconds(
            self.hashing - earlier.hashing,
            self.server - earlier.server,
            self.machine - earlier.machine,
        )


def cpu_seconds(pid: int) -> CpuSeconds:
    """CPU time so far of the server's hashing threads, of the whole server, and of the machine.

    The hashing threads are the server's threads that run at a lower priority (a higher nice
    value) than its main thread; Linux's per-thread counters tell them apart.
    """
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_and_nice(path: Path) -> tuple[float, int]:
        fields = path.read_text().rpartition(")")[2].split()
        # After the command name: utime and stime are fields 11 and 12, nice is 16.
        return (int(fields[11]) + int(fields[12])) / ticks, int(fields[16])

    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            threads[task.name] = cpu_and_nice(task / "stat")
    main_nice = threads[str(pid)][1]
    # The process's own counter also keeps the time of threads that have ended.
    server_seconds, _ = cpu_and_nice(Path(f"/proc/{pid}/stat"))
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    idle = int(cpu[3]) + int(cpu[4])
    return CpuSeconds(
        hashing=sum(seconds for seconds, nice in threads.values() if nice > main_nice),
        server=server_seconds,
        machine=(sum(int(value) for value in cpu[:8]) - idle) / ticks,
    )


class PeakRss:
    """Samples a process's peak resident memory (VmHWM) until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except FileNotFoundError:
                return
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                self.peak_kib = max(self.peak_kib, int(match.group(1)))
            self._stop.wait(0.2)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


@contextmanager
def server(module: str, env: dict[str, str], workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            module,
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-proxy-headers",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def service_settings(backend: str, workdir: Path) -> dict[str, str]:
    settings = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "benchmark-signing-key-" + "b" * 40,
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": "benchmark admin password",
        "SECURE_COOKIES": "true",
        # Production refuses plain-http links; the benchmark sends no mail.
        "PUBLIC_URL": "https://auth.example.com",
        "RATE_LIMIT_LOGIN": UNLIMITED,
        "RATE_LIMIT_REGISTER": UNLIMITED,
        "RATE_LIMIT_REFRESH": UNLIMITED,
        "RATE_LIMIT_API": UNLIMITED,
        "DATABASE_URL": f"sqlite:///{workdir}/auth.db",
    }
    if backend == "production":
        settings["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{POSTGRES_BENCH_DATABASE}"
        settings["REDIS_URL"] = REDIS_URL
        settings["REDIS_KEY_PREFIX"] = "authbench"
    return settings


async def reset_production_stores() -> None:
    import asyncpg
    from redis.asyncio import Redis

    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(
            f'DROP DATABASE IF EXISTS "{POSTGRES_BENCH_DATABASE}" WITH (FORCE)'
        )
        await connection.execute(f'CREATE DATABASE "{POSTGRES_BENCH_DATABASE}"')
    finally:
        await connection.close()
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()


async def seed(settings: Settings, count: int) -> None:
    """Store `count` extra users, each with one live session, in bulk."""
    storage = build_storage(settings)
    hasher = PasswordHasher.from_settings(settings)
    try:
        hashed = await hasher.hash(PASSWORD)
    finally:
        hasher.close()
    now = datetime.now(UTC)
    try:
        async with storage.engine.begin() as db:
            rows = [
                {
                    "email": f"seed{index}@example.com",
                    "username": f"seed{index}",
                    "hashed_password": hashed,
                    "is_active": True,
                    "is_admin": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for index in range(count)
            ]
            await db.execute(insert(User), rows)
            first_id = int(
                await db.scalar(select(User.id).where(User.email == "seed0@example.com")) or 0
            )
        sessions = [
            SessionRecord(
                id=new_token_id(),
                user_id=first_id + index,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(days=7),
                ip_address="192.0.2.1",
                user_agent="seed",
                browser="Other",
                os="Other",
                device_type="other",
                refresh_jti=new_token_id(),
                refresh_issued_at=now,
            )
            for index in range(count)
        ]
        if isinstance(storage.sessions, SqlSessionStore):
            from app.models import AuthSession

            async with storage.engine.begin() as db:
                await db.execute(
                    insert(AuthSession),
                    [asdict(session) for session in sessions],
                )
        else:
            for start in range(0, count, 50):
                await asyncio.gather(
                    *(storage.sessions.create(s) for s in sessions[start : start + 50])
                )
    finally:
        await storage.close()


async def settle(settings: Settings) -> None:
    """Do now the work a bulk insert leaves for later, so that it cannot run during the
    measurements: checkpoint the SQLite WAL, or vacuum, analyse and checkpoint PostgreSQL;
    then write the dirty pages out. (Seeded runs measured slower hashes before the storm than
    unseeded ones; this did not change that, but it keeps the seeding's leftovers out.)"""
    url = make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(url.database))) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        import asyncpg

        connection = await asyncpg.connect(settings.DATABASE_URL)
        try:
            await connection.execute("VACUUM ANALYZE")
            await connection.execute("CHECKPOINT")
        finally:
            await connection.close()
    os.sync()


def measure_hash_ms(settings: Settings, *, at_once: int) -> float:
    """Wall time of one hash while `at_once` hashes run side by side, median of 10 rounds.

    With one at a time it is the hash's own cost; with one per core it is what the cores can
    sustain together, which is what a login storm can reach at best.
    """
    hasher = PasswordHasher.from_settings(settings)

    async def timed() -> list[float]:
        durations = []
        for _ in range(10):
            started = time.perf_counter()
            await asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(at_once)))
            durations.append((time.perf_counter() - started) * 1000)
        return durations

    try:
        return statistics.median(asyncio.run(timed()))
    finally:
        hasher.close()


def register(url: str, email: str) -> None:
    httpx.post(
        f"{url}/api/v1/auth/register",
        json={"email": email, "username": email.split("@")[0], "password": PASSWORD},
        timeout=30,
    ).raise_for_status()


def sign_in(url: str, email: str, sessions: int) -> list[dict[str, str]]:
    """The token pairs of `sessions` new sessions of the user."""
    return [
        httpx.post(
            f"{url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
        ).json()
        for _ in range(sessions)
    ]


@dataclass
class Storm:
    login: WrkResult
    probe: WrkResult
    cpu: CpuSeconds

    def cpu_per_login(self) -> str:
        per_login = 1000 / max(self.login.requests, 1)
        cpu = self.cpu
        return (
            f"hashing threads {cpu.hashing * per_login:.1f} ms, "
            f"rest of the server {(cpu.server - cpu.hashing) * per_login:.1f} ms, "
            f"rest of the machine {(cpu.machine - cpu.server) * per_login:.1f} ms "
            f"(wrk, the probe, the kernel and any database or Redis server): hashing had "
            f"{cpu.hashing / cpu.machine:.0%} of the busy CPU"
        )


def login_storm(
    url: str,
    pid: int,
    *,
    probe_url: str,
    access_token: str,
    login_env: dict[str, str],
    duration: int,
) -> Storm:
    """8 connections signing in for `duration` seconds while the paced probe runs beside them,
    and the CPU the server (`pid`) and the machine spent meanwhile."""
    result: dict[str, WrkResult] = {}

    def sign_ins() -> None:
        result["login"] = wrk(
            url + "/api/v1/auth/login",
            connections=8,
            threads=1,
            duration=duration,
            script="login.lua",
            env=login_env,
        )

    sign_in_thread = threading.Thread(target=sign_ins)
    cpu_before = cpu_seconds(pid)
    sign_in_thread.start()
    time.sleep(0.5)
    probe = paced_probe(
        probe_url, access_token=access_token, per_second=PROBE_RATE, duration=duration - 1
    )
    sign_in_thread.join()
    return Storm(login=result["login"], probe=probe, cpu=cpu_seconds(pid) - cpu_before)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--backend", choices=["embedded", "production"], default="embedded")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="extra users and sessions to store")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the ceiling and each throughput row"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a service setting, e.g. --set RATE_LIMIT_ENABLED=false",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install it with `apt-get install wrk` (Debian/Ubuntu).")

    workdir = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    env = service_settings(args.backend, workdir)
    env.update(override.split("=", 1) for override in args.set)
    settings = Settings.model_validate(env)
    if args.backend == "production":
        asyncio.run(reset_production_stores())
    if args.seed:
        from app.services.bootstrap import prepare_from_settings

        asyncio.run(prepare_from_settings(settings))
        started = time.perf_counter()
        asyncio.run(seed(settings, args.seed))
        print(f"seeded {args.seed} users and sessions in {time.perf_counter() - started:.1f} s")
        asyncio.run(settle(settings))

    cores = os.cpu_count() or 1
    common = {"duration": args.duration, "threads": args.threads}

    with (
        server("bench.bare_app:app", {}, workdir) as (bare_url, _),
        server("app.asgi:app", env, workdir) as (url, pid),
    ):
        rss = PeakRss(pid)
        chains = args.threads * 4
        # The listed user has as many sessions as there are refresh chains; the chains belong
        # to another user, so that the list stays the same size over the rounds.
        email, refreshing_email = "bench@example.com", "refresh@example.com"
        register(url, email)
        register(url, refreshing_email)
        access = sign_in(url, email, chains)[-1]["access_token"]
        auth = {"ACCESS_TOKEN": access}

        def refresh_round() -> WrkResult:
            # Fresh sessions each round: the last round's chains end in tokens already rotated.
            pairs = sign_in(url, refreshing_email, chains)
            token_file = workdir / "refresh_tokens.txt"
            token_file.write_text("".join(pair["refresh_token"] + "\n" for pair in pairs))
            return wrk(
                url,
                connections=chains,
                threads=chains,
                duration=args.duration,
                script="refresh_chain.lua",
                env={"REFRESH_TOKENS_FILE": str(token_file)},
            )

        measurements: dict[str, Callable[[], WrkResult]] = {
            "GET /api/v1/users/me": lambda: wrk(
                url + "/api/v1/users/me",
                connections=args.connections,
                script="bearer_get.lua",
                env=auth,
                **common,
            ),
            "GET /api/v1/sessions/": lambda: wrk(
                url + "/api/v1/sessions/",
                connections=args.connections,
                script="bearer_get.lua",
                env=auth,
                **common,
            ),
            "POST /api/v1/auth/refresh": refresh_round,
        }
        # Each round measures the ceiling and then every row, and a row's share of the ceiling
        # is the median of its rounds' shares: on a shared machine the throughput drifts over
        # minutes by more than the differences measured.
        bare_rounds: list[WrkResult] = []
        rounds: dict[str, list[WrkResult]] = {name: [] for name in measurements}
        shares: dict[str, list[float]] = {name: [] for name in measurements}
        for _ in range(args.rounds):
            ceiling = wrk(
                bare_url + "/bare",
                connections=args.connections,
                script="bearer_get.lua",
                env={"ACCESS_TOKEN": "none"},
                **common,
            )
            bare_rounds.append(ceiling)
            for name, measure in measurements.items():
                result = measure()
                rounds[name].append(result)
                shares[name].append(result.requests_per_second / ceiling.requests_per_second)
        bare = median_round(bare_rounds)
        rows: list[tuple[str, WrkResult, float]] = [
            (name, median_round(rounds[name]), statistics.median(shares[name]))
            for name in measurements
        ]
        login_env = {"LOGIN_EMAIL": email, "LOGIN_PASSWORD": PASSWORD}
        login_result = wrk(
            url + "/api/v1/auth/login", connections=8, script="login.lua", env=login_env, **common
        )
        rows.append(
            (
                "POST /api/v1/auth/login",
                login_result,
                login_result.requests_per_second / bare.requests_per_second,
            )
        )

        # Measured here, just before the storm: the machine's speed drifts over a run.
        hash_alone_ms = measure_hash_ms(settings, at_once=1)
        hash_all_cores_ms = measure_hash_ms(settings, at_once=cores)
        storm = login_storm(
            url,
            pid,
            probe_url=url + "/api/v1/users/me",
            access_token=access,
            login_env=login_env,
            duration=args.duration,
        )
        peak_rss_mb = rss.stop()
        with server("bench.bare_login_app:app", {**env, **login_env}, workdir) as (
            bare_login_url,
            bare_login_pid,
        ):
            bare_storm = login_storm(
                bare_login_url,
                bare_login_pid,
                probe_url=bare_login_url + "/bare",
                access_token="none",
                login_env=login_env,
                duration=args.duration,
            )

    print(
        f"\nbackend: {args.backend}   cores: {cores}   seeded: {args.seed}   "
        f"overrides: {' '.join(args.set) or 'none'}   "
        f"wrk: {args.threads} threads, {args.connections} connections, {args.duration} s, "
        f"{args.rounds} rounds of the ceiling and each row in turn: the median round, and the "
        f"median of the rounds' shares of the ceiling"
    )
    print(f"{'endpoint':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'errors':>7}")
    for name, result, ratio in [("GET /bare (FastAPI ceiling)", bare, 1.0), *rows]:
        print(
            f"{name:32} {result.requests_per_second:9.0f} {result.p50_ms:8.2f} "
            f"{result.p99_ms:8.2f} {ratio:8.1%} {result.errors:7d}"
        )
    capacity_alone = cores / (hash_alone_ms / 1000)
    capacity = cores / (hash_all_cores_ms / 1000)
    print(
        f"\npassword hash (argon2id, same settings): {hash_alone_ms:.1f} ms alone"
        f" -> {capacity_alone:.1f} logins/s on {cores} cores; {hash_all_cores_ms:.1f} ms"
        f" with {cores} at once -> {capacity:.1f} logins/s"
    )
    print(
        f"login storm (8 connections): {storm.login.requests_per_second:.1f} logins/s = "
        f"{storm.login.requests_per_second / capacity:.0%} of hashing capacity "
        f"({storm.login.requests_per_second / capacity_alone:.0%} of cores / hash alone), "
        f"errors {storm.login.errors}"
    )
    print(f"CPU per login in the storm: {storm.cpu_per_login()}")
    print(
        f"GET /api/v1/users/me during the storm ({PROBE_RATE}/s, paced): "
        f"p50 {storm.probe.p50_ms:.2f} ms, "
        f"p99 {storm.probe.p99_ms:.2f} ms, errors {storm.probe.errors}"
    )
    print(
        f"the same storm on a bare FastAPI login that only checks the password (same hasher; "
        f"the probe on /bare, run once, after the service's): "
        f"{bare_storm.login.requests_per_second:.1f} logins/s (the service reached "
        f"{storm.login.requests_per_second / bare_storm.login.requests_per_second:.0%} of it), "
        f"errors {bare_storm.login.errors}, probe errors {bare_storm.probe.errors}; "
        f"CPU per login: {bare_storm.cpu_per_login()}"
    )
    print(f"server peak RSS: {peak_rss_mb:.0f} MB")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
