"""Real processes for the reliability campaigns: a backend of its own (a fresh PostgreSQL
database and Redis prefix when the pass has them, else SQLite and the in-memory layer),
daphne servers, the worker, and the demo mediation, all started as subprocesses.

Nothing here stops a shared service: faults are injected into the private Redis and
PostgreSQL of ``tests/chaos/services.py`` only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
LONG = os.environ.get("PALABRE_CHAOS") == "long"

# What a server process must never be handed from the developer's shell.
_DROPPED = (
    "DJANGO_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS", "PALABRE_MASTER_KEYS", "PALABRE_SEALING_KEYS", "PALABRE_DATA_DIR",
    "PALABRE_CHANNEL_PREFIX", "DJANGO_SETTINGS_MODULE", "PYTEST_CURRENT_TEST",
)
# Server-side exceptions in a daphne or worker log: what "0 server exceptions" counts.
TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.M)
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+) ", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(
        PALABRE_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),  # this checkout, whatever the editable install points at
        PALABRE_LOG_LEVEL="WARNING",
        # Campaigns send faster than a person: the per-connection bucket is tested on its own.
        PALABRE_RATE_PER_S="1000",
        PALABRE_RATE_BURST="1000",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Backend:
    """A database and a channel-layer prefix that belong to one campaign."""

    def __init__(self, tmp: Path, *, database_url: str | None = None, redis_url: str | None = None):
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = f"rel-{uuid.uuid4().hex[:10]}"
        self.admin_url = database_url or os.environ.get("DATABASE_URL", "")
        self.redis_url = redis_url if redis_url is not None else os.environ.get("REDIS_URL", "")
        self.db_name = None
        if self.admin_url.startswith("postgres"):
            self.db_name = f"palabre_rel_{uuid.uuid4().hex[:10]}"
            _pg_admin(self.admin_url, f'CREATE DATABASE "{self.db_name}"')
            self.database_url = self.admin_url.rsplit("/", 1)[0] + "/" + self.db_name
        else:
            self.database_url = ""

    @property
    def postgres(self) -> bool:
        return self.db_name is not None

    def env(self, **extra) -> dict:
        env = base_env(self.data_dir, **extra)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
            env["PALABRE_CHANNEL_PREFIX"] = self.prefix
        return env

    def manage(self, *args, env_extra: dict | None = None, timeout: float = 300) -> str:
        out = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT, env=self.env(**(env_extra or {})), capture_output=True, text=True, timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def demo(self, consumers: int = 5) -> dict:
        out = self.manage("demo", "--json", "--sessions", "--consumers", str(consumers))
        return json.loads(out.strip().splitlines()[-1])

    def sql(self, query: str, params=()) -> list[tuple]:
        """Reads the campaign's database directly (what is stored, not what the API says)."""
        if self.postgres:
            import psycopg

            with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
                cur = conn.execute(query.replace("?", "%s"), params)
                return cur.fetchall() if cur.description else []
        import sqlite3

        with sqlite3.connect(self.data_dir / "palabre.sqlite3", timeout=30) as conn:
            return conn.execute(query, params).fetchall()

    def drop(self) -> None:
        if self.db_name:
            with suppress(Exception):
                _pg_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')


def _pg_admin(url: str, statement: str) -> None:
    import psycopg

    # The maintenance database: the pass's own database may not exist (pytest-django
    # only creates its test_ copy).
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)


class Proc:
    """One subprocess (daphne or the worker) with its log in a file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill9(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            with suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()

    def log(self) -> str:
        if not self._log.closed:  # a process stopped before the end of its test
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tracebacks(self) -> list[str]:
        """Server exceptions: tracebacks, except those logged as warnings along with the
        answer they got (Django's 4xx, ``unavailable`` while a service is down)."""
        text = self.log()
        found = []
        for m in TRACEBACK.finditer(text):
            records = RECORD.findall(text, 0, m.start())
            if records and records[-1] in ("WARNING", "INFO", "DEBUG"):
                continue  # handled and logged on purpose (a 4xx, a service down), chained causes included
            found.append(text[max(0, m.start() - 300): m.start() + 3000])
        return found

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Daphne(Proc):
    def __init__(self, backend: Backend, *, name: str = "daphne", port: int | None = None, env_extra: dict | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        argv = [DAPHNE, "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"]
        super().__init__(name, argv, backend.env(**(env_extra or {})), backend.tmp)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
            with suppress(OSError, urllib.error.URLError):
                # /healthz: never redirected to https in production; 503 still means serving.
                if http("GET", self.base + "/healthz", timeout=5)[0] in (200, 503):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.log()[-4000:]}")


class Worker(Proc):
    def __init__(self, backend: Backend, *, interval: float = 0.2, env_extra: dict | None = None):
        argv = [PYTHON, "manage.py", "run_deadlines", "--interval", str(interval)]
        super().__init__("worker", argv, backend.env(**(env_extra or {})), backend.tmp)


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 301/302 is an answer to look at, not to follow


_NO_REDIRECT = urllib.request.build_opener(_KeepRedirects)


def http(method: str, url: str, *, body=None, headers: dict | None = None, timeout: float = 10):
    """(status, headers, parsed JSON or raw bytes) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _NO_REDIRECT.open(req, timeout=timeout) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, raw


def session_headers(session: str, csrf: str = "RelCsrfToken0123456789abcdefABCD") -> dict:
    """Cookie and CSRF headers of a logged-in demo user (Django accepts any well-formed
    token whose cookie and header agree)."""
    return {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf}
