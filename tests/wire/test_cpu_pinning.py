"""project/runtime.py: each daphne serving Palabre runs, all its threads, on a CPU that no
other Palabre daphne of the machine holds; a daphne that finds them all taken is left to
the scheduler, a CPU freed by a daphne that exits goes to the next one, and
PALABRE_PIN_CPU=0 pins nothing. Real daphne processes, each allowed the same CPUs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = str(Path(sys.executable).with_name("daphne"))
# Two CPUs (when the machine has them) whatever its size: the processes below are as
# many as these plus one.
ALLOWED = frozenset(sorted(os.sched_getaffinity(0))[:2])

pytestmark = pytest.mark.wire


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALABRE_", "DJANGO_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        env.pop(name, None)
    (tmp_path / "tmp").mkdir()
    # TMPDIR holds the CPUs' lock files: these processes contend with each other only.
    env.update(PALABRE_DATA_DIR=str(tmp_path / "data"), TMPDIR=str(tmp_path / "tmp"))
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True)
    return env


class Servers:
    def __init__(self, env, log_dir: Path):
        self.env, self.log_dir, self.procs = env, log_dir, []

    def start(self, **extra) -> subprocess.Popen:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = self.log_dir / f"daphne-{port}.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
                env={**self.env, **extra}, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
                preexec_fn=lambda: os.sched_setaffinity(0, ALLOWED),
            )
        self.procs.append(proc)
        # Served: daphne's reactor runs (the pin is done when it starts), and the page's
        # view ran on a thread of Django's (started after the pin).
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    assert answer.status == 200
                    return proc
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

    def stop(self, proc) -> None:
        proc.terminate()
        proc.wait(10)
        self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


@pytest.fixture
def servers(env, tmp_path):
    servers = Servers(env, tmp_path)
    yield servers
    servers.stop_all()


def cpus_of(proc) -> frozenset:
    """The CPUs every thread of the process may run on (one answer: they all agree)."""
    found = set()
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        for line in status.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found.add(frozenset(_cpu_list(line.split(":", 1)[1].strip())))
    assert len(found) == 1, f"threads of one process on different CPUs: {found}"
    return found.pop()


def _cpu_list(text: str) -> set[int]:
    cpus = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def test_each_daphne_takes_a_cpu_of_its_own_and_one_too_many_is_left_to_the_scheduler(servers):
    procs = [servers.start() for _ in range(len(ALLOWED) + 1)]
    held = [cpus_of(proc) for proc in procs]
    if len(ALLOWED) < 2:
        assert held == [ALLOWED] * len(procs)  # one CPU allowed: nothing to choose
        return
    assert sorted((cpus for cpus in held if len(cpus) == 1), key=min) == [frozenset({cpu}) for cpu in sorted(ALLOWED)]
    assert [cpus for cpus in held if len(cpus) > 1] == [ALLOWED]


def test_a_cpu_freed_by_a_daphne_that_exits_goes_to_the_next_one(servers):
    first = servers.start()
    second = servers.start()
    freed = cpus_of(first)
    servers.stop(first)
    third = servers.start()
    assert cpus_of(third) == freed
    if len(ALLOWED) >= 2:
        assert len(freed) == 1 and cpus_of(second) != freed


def test_pinning_can_be_turned_off(servers):
    proc = servers.start(PALABRE_PIN_CPU="0")
    assert cpus_of(proc) == ALLOWED
