"""A Redis and a PostgreSQL cluster of the chaos campaigns' own, to stop and restart at
will. The shared Redis (6379) and the shared cluster (5432) that every other test uses are
never touched. Created on first use (the Debian packages come from scripts/services.sh);
needs root, like `make test` itself.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import suppress
from pathlib import Path

REDIS_PORT = 6390
PG_PORT = 5440
PG_CLUSTER = "chaos"
PG_URL = f"postgres://palabre:palabre@127.0.0.1:{PG_PORT}/postgres"
TMP = Path(os.environ.get("TMPDIR", "/tmp"))


def _run(*argv, check=True, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout, cwd="/")


class PrivateRedis:
    url = f"redis://127.0.0.1:{REDIS_PORT}/0"

    def up(self) -> bool:
        out = _run("redis-cli", "-p", str(REDIS_PORT), "ping", check=False)
        return out.stdout.strip() == "PONG"

    def start(self) -> None:
        if not self.up():
            _run(
                "redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--daemonize", "yes",
                "--save", "", "--appendonly", "no", "--dir", str(TMP),
                "--logfile", str(TMP / "palabre-chaos-redis.log"),
            )
        _wait(self.up, "private Redis")

    def stop(self) -> None:
        _run("redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave", check=False)
        _wait(lambda: not self.up(), "private Redis to stop")


class PrivatePostgres:
    def __init__(self):
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v.split(".")[0]))
        self.version = versions[-1]

    def up(self) -> bool:
        return _run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-t", "2", check=False).returncode == 0

    def exists(self) -> bool:
        out = _run("pg_lsclusters", "-h", check=False).stdout
        return any(line.split()[:2] == [self.version, PG_CLUSTER] for line in out.splitlines())

    def start(self) -> None:
        if not self.exists():
            _run("pg_createcluster", self.version, PG_CLUSTER, "--port", str(PG_PORT), timeout=120)
        if not self.up():
            _run("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "2775", "/var/run/postgresql")
            _run("pg_ctlcluster", self.version, PG_CLUSTER, "start", timeout=120)
        _wait(self.up, "private PostgreSQL")
        sql = (
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'palabre') THEN "
            "CREATE ROLE palabre LOGIN CREATEDB PASSWORD 'palabre'; END IF; END $$;"
        )
        _run("runuser", "-u", "postgres", "--", "psql", "-p", str(PG_PORT), "-qX", "-d", "postgres", "-c", sql)

    def stop(self) -> None:
        _run("pg_ctlcluster", self.version, PG_CLUSTER, "stop", "-m", "fast", timeout=120)
        _wait(lambda: not self.up(), "private PostgreSQL to stop")

    def restart(self) -> None:
        self.stop()
        self.start()


def _wait(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")
