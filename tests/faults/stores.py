"""Private PostgreSQL and Redis servers on free ports, for fault tests that stop, restart or hang
a store. The machine's shared servers are never touched."""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.servers import free_port


def _postgres_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not versions:
        raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    return versions[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster; as root it runs as the postgres user, as it must."""

    def __init__(self) -> None:
        # Not under pytest's temporary folders, which the postgres user may not enter.
        self.folder = Path(tempfile.mkdtemp(prefix="auth-test-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._bin = _postgres_bin()

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, str(self._bin / argv[0]), *argv[1:]],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self, *, standby: bool = False) -> None:
        """Start; as a standby without hot standby it refuses every connection with
        "the database system is not accepting connections" (SQLSTATE 57P03), as a starting
        server does, for as long as it runs."""
        signal_file = self.data / "standby.signal"
        if standby:
            signal_file.touch()
            if os.geteuid() == 0:
                shutil.chown(signal_file, "postgres")
        else:
            signal_file.unlink(missing_ok=True)
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c hot_standby={'off' if standby else 'on'}"
        )
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        # Stopped already if the test left it down.
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


class PrivateRedis:
    def __init__(self, workdir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    def client(self) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> None:
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self._persistent
            else ["--appendonly", "no"]
        )
        address = ["--port", str(self.port), "--bind", "127.0.0.1"]
        self._process = subprocess.Popen(
            ["redis-server", *address, "--dir", str(self._workdir), "--save", "", *persistence],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client().ping()
                return
            except (RedisConnectionError, RedisTimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def pause(self, seconds: float) -> None:
        """Make the server answer no client for `seconds`, as a hung Redis does."""
        pause = ("CLIENT", "PAUSE", int(seconds * 1000), "ALL")
        self.client().execute_command(*pause)  # type: ignore[no-untyped-call]


@contextmanager
def private_redis(workdir: Path, *, persistent: bool = False) -> Iterator[PrivateRedis]:
    server = PrivateRedis(workdir, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()
