"""The systems a run measures, each started fresh for each phase:

- P1 Palabre embedded: one daphne, SQLite, Channels' in-memory layer;
- P2 Palabre production-shaped: 2 daphne processes, PostgreSQL, Redis channel layer
  (``DJANGO_ENV=production`` with generated secrets; TLS left out: loopback);
- A the Channels tutorial consumer over RedisChannelLayer (bench/baselines/a_asgi.py);
- D a plain `websockets` server broadcasting with ``websockets.broadcast``;
- F the stock Channels pattern with nothing to do: a consumer that only accepts, on a
  stock daphne (connections only).

Palabre runs with ``PALABRE_RATE_PER_S``/``PALABRE_RATE_BURST`` raised: its per-connection
token bucket (10 frames/s) would otherwise throttle the benchmark's senders.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench.procs import PYTHON, ROOT, Server, cpu_s, free_port, rss_kb

DAPHNE = str(ROOT / ".venv" / "bin" / "daphne")
PG_ADMIN_URL = "postgres://palabre:palabre@127.0.0.1:5432/palabre"
PG_BENCH_DB = "palabre_bench"
PG_BENCH_URL = f"postgres://palabre:palabre@127.0.0.1:5432/{PG_BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/0"
SCRUBBED = (
    "DJANGO_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS", "DJANGO_SETTINGS_MODULE",
)


def base_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("PALABRE_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def redis_pid() -> int | None:
    try:
        return int(redis_client().info("server")["process_id"])
    except Exception:  # noqa: BLE001
        return None


def redis_used_memory() -> int:
    return int(redis_client().info("memory")["used_memory"])


def redis_forget(prefix: str) -> None:
    """Deletes a prefix's keys: groups left behind by the previous phase's clients."""
    client = redis_client()
    batch = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


class System:
    key = ""
    title = ""
    dialect = "chat"
    processes = 1
    uses_redis = False

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.servers: list[Server] = []
        self.ports: list[int] = []
        self._redis_pid = redis_pid() if self.uses_redis else None

    def setup(self) -> None:
        pass

    def start(self, gc_env: dict | None = None) -> None:
        self.stop()
        self.ports = [free_port() for _ in range(self.processes)]
        self.servers = [
            Server(f"{self.key}-{i}", self.command(port), {**self.env(), **(gc_env or {})}, port, self.log_dir).start()
            for i, port in enumerate(self.ports)
        ]
        for server in self.servers:
            server.wait_ready()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers = []

    def cpu(self) -> float:
        return sum(s.cpu() for s in self.servers)

    def rss(self) -> int:
        return sum(s.rss() for s in self.servers)

    def redis_cpu(self) -> float:
        return cpu_s(self._redis_pid) if self._redis_pid else 0.0

    def redis_rss(self) -> int:
        return rss_kb(self._redis_pid) if self._redis_pid else 0

    def mark(self) -> None:
        for server in self.servers:
            server.mark()

    def errors(self, since_mark: bool = True) -> dict:
        found: dict = {}
        for server in self.servers:
            for name, count in server.errors(since_mark).items():
                found[name] = found.get(name, 0) + count
        return found

    def pids(self) -> list[int]:
        return [s.pid for s in self.servers]

    def env(self) -> dict:
        return base_env()

    def command(self, port: int) -> list[str]:
        raise NotImplementedError


class BaselineD(System):
    key = "D"
    title = "plain `websockets` + `websockets.broadcast()`"

    def command(self, port):
        return [PYTHON, "-m", "bench.baselines.d_server", "--port", str(port)]

    def room(self, n: int) -> tuple[dict, list[dict]]:
        port = self.ports[0]
        target = {"u": f"ws://127.0.0.1:{port}/bench", "o": f"http://127.0.0.1:{port}"}
        return {**target, "s": True}, [dict(target) for _ in range(n)]

    def small_rooms(self, rooms: int, members: int) -> list[dict]:
        port = self.ports[0]
        return [
            {"u": f"ws://127.0.0.1:{port}/r{j}", "o": f"http://127.0.0.1:{port}"}
            for j in range(rooms) for _ in range(members)
        ]


class BaselineA(System):
    key = "A"
    title = "Channels tutorial consumer, daphne + RedisChannelLayer"
    uses_redis = True
    prefix = "bench-a"

    def env(self):
        return {
            **base_env(),
            "DJANGO_SETTINGS_MODULE": "bench.baselines.a_settings",
            "REDIS_URL": REDIS_URL,
            "BENCH_A_DB": str(self.run_dir / "baseline-a.sqlite3"),
            "BENCH_A_PREFIX": self.prefix,
        }

    def start(self, gc_env=None):
        redis_forget(self.prefix)
        super().start(gc_env)

    def command(self, port):
        return [DAPHNE, "-v", "0", "-b", "127.0.0.1", "-p", str(port), "bench.baselines.a_asgi:application"]

    def room(self, n):
        port = self.ports[0]
        target = {"u": f"ws://127.0.0.1:{port}/ws/chat/bench/", "o": f"http://127.0.0.1:{port}"}
        return {**target, "s": True}, [dict(target) for _ in range(n)]

    def small_rooms(self, rooms, members):
        port = self.ports[0]
        return [
            {"u": f"ws://127.0.0.1:{port}/ws/chat/r{j}/", "o": f"http://127.0.0.1:{port}"}
            for j in range(rooms) for _ in range(members)
        ]


class BaselineF(BaselineA):
    """A stock Channels consumer that only accepts (bench/baselines/f_asgi.py): connections only."""

    key = "F"
    title = "accept-only Channels consumer on daphne"
    uses_redis = False

    def env(self):
        return {**base_env(), "DJANGO_SETTINGS_MODULE": "bench.baselines.f_settings"}

    def start(self, gc_env=None):
        System.start(self, gc_env)

    def command(self, port):
        return [DAPHNE, "-v", "0", "-b", "127.0.0.1", "-p", str(port), "bench.baselines.f_asgi:application"]


class Palabre(System):
    dialect = "palabre"

    def __init__(self, run_dir: Path, production: bool, processes: int, secrets_env: dict | None = None):
        self.production = production
        self.processes = processes
        self.uses_redis = production
        self.key = "P2" if production else "P1"
        self.title = (
            f"Palabre production-shaped: {processes} daphne + PostgreSQL + Redis"
            if production
            else "Palabre embedded: 1 daphne + SQLite + in-memory layer"
        )
        self.data_dir = run_dir / ("data-production" if production else "data-embedded")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "staticfiles").mkdir(exist_ok=True)
        self.secrets_env = secrets_env or {}
        self.demo_data: dict | None = None
        super().__init__(run_dir)

    def env(self):
        env = {
            **base_env(),
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "PALABRE_DATA_DIR": str(self.data_dir),
            "PALABRE_RATE_PER_S": "1000000000",
            "PALABRE_RATE_BURST": "1000000000",
        }
        if self.production:
            env.update(
                {
                    "DJANGO_ENV": "production",
                    "DATABASE_URL": PG_BENCH_URL,
                    "REDIS_URL": REDIS_URL,
                    "PALABRE_CHANNEL_PREFIX": "bench",
                    "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "SECURE_SSL_REDIRECT": "false",
                    # Its daphne processes share this machine and its /tmp: each on a CPU
                    # of its own, as README.md says to set for such a deployment.
                    "PALABRE_PIN_CPU": "true",
                    **self.secrets_env,
                }
            )
        return env

    def manage(self, *args: str, timeout: float = 900) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], env=self.env(), cwd=ROOT, capture_output=True, text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def setup(self) -> None:
        if self.production:
            create_bench_database()
        self.manage("migrate", "--noinput")

    def start(self, gc_env=None):
        if self.production:
            redis_forget("bench")
        super().start(gc_env)

    variants = False  # True: daphne under bench/serve.py (fast lane and gc switches)

    def command(self, port):
        # As the Procfile: a reconnect storm of a big room waits up to 30 s for its
        # handshake rather than being dropped after daphne's default 5 s and retrying.
        args = ["-v", "0", "--websocket_connect_timeout", "30", "-b", "127.0.0.1", "-p", str(port),
                "project.asgi:application"]
        if self.variants:
            return [PYTHON, "-m", "bench.serve", *args]
        return [DAPHNE, *args]

    def demo(self, consumers: int) -> dict:
        """``manage.py demo --json --consumers N --sessions`` (servers stopped)."""
        out = self.manage("demo", "--json", "--consumers", str(consumers), "--sessions")
        self.demo_data = json.loads(out.strip().splitlines()[-1])
        return self.demo_data

    def _target(self, i: int, room_id: str, session: str) -> dict:
        port = self.ports[i % len(self.ports)]
        return {"u": f"ws://127.0.0.1:{port}/ws/rooms/{room_id}/", "o": f"http://127.0.0.1:{port}", "c": session}

    def room(self, n):
        data = self.demo_data
        room_id = data["room_id"]
        mediator = next(u for u in data["users"] if u["role"] == "mediator")
        consumers = [u for u in data["users"] if u["role"] == "consumer"][:n]
        sender = {**self._target(0, room_id, mediator["session"]), "s": True}
        return sender, [self._target(i, room_id, u["session"]) for i, u in enumerate(consumers)]

    def fixture_rooms(self, rooms: int, members: int) -> None:
        done = subprocess.run(
            [PYTHON, "-m", "bench.fixtures", "--rooms", str(rooms), "--members", str(members)],
            env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.fixtures failed:\n{done.stderr[-3000:]}")
        self.rooms_data = json.loads(done.stdout.strip().splitlines()[-1])

    def small_rooms(self, rooms, members):
        out = []
        for j, room in enumerate(self.rooms_data["rooms"][:rooms]):
            for i, session in enumerate(room["sessions"][:members]):
                out.append(self._target(i + j, room["room_id"], session))
        return out


def create_bench_database() -> None:
    """A fresh ``palabre_bench`` database, owned by the palabre role (which has CREATEDB)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")


def production_secrets() -> dict:
    code = (
        "from django.core.management.utils import get_random_secret_key as s;"
        "from crypto.keyring import generate_master_keys as m;"
        "from crypto.signing import generate_sealing_keys as g;"
        "import json; print(json.dumps({'SECRET_KEY': s(), 'PALABRE_MASTER_KEYS': m(), 'PALABRE_SEALING_KEYS': g()}))"
    )
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=base_env(), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)
