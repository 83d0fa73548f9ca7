"""Processes of a benchmark run: servers, load clients, and what /proc says about them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE // 1024
    except OSError:
        return 0


def mem_available_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Server:
    """One server process, its log in a file; ``mark()``/``errors()`` read the log from a
    point on."""

    def __init__(self, name: str, cmd: list[str], env: dict, port: int, log_dir: Path):
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.log_path = log_dir / f"{name}-{port}.log"
        self.proc: subprocess.Popen | None = None
        self._mark = 0

    def start(self) -> Server:
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            if port_open(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not listening on {self.port} after {timeout}s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_s(self.pid)

    def rss(self) -> int:
        return rss_kb(self.pid)

    def mark(self) -> None:
        self._mark = self.log_path.stat().st_size

    def errors(self, since_mark: bool = True) -> Counter:
        """Counts of exception types and ERROR lines in the log (since the mark)."""
        with open(self.log_path, "rb") as f:
            if since_mark:
                f.seek(self._mark)
            text = f.read().decode("utf-8", "replace")
        found: Counter = Counter()
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Timeout))(?::|$)", line.strip())
            if m:
                found[m.group(1)] += 1
            elif " ERROR " in line or line.startswith("ERROR"):
                found["ERROR " + line.split(":", 3)[-1].strip()[:80]] += 1
        return found

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Client:
    """One load-client process (bench/client.py) and its JSON-lines conversation."""

    def __init__(self, dialect: str, index: int):
        self.dialect, self.index = dialect, index
        self.proc: asyncio.subprocess.Process | None = None
        self.answers: asyncio.Queue = asyncio.Queue()
        self.events: asyncio.Queue = asyncio.Queue()
        self.receivers = 0

    async def start(self) -> Client:
        self.proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "bench.client", "--dialect", self.dialect, "--proc", str(self.index),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
            limit=2**28,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                await self.answers.put({"re": "eof"})
                return
            obj = json.loads(line)
            await (self.events if "ev" in obj else self.answers).put(obj)

    def tell(self, cmd: str, **fields) -> None:
        self.proc.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())

    async def ask(self, cmd: str, timeout: float = 600, **fields) -> dict:
        self.tell(cmd, **fields)
        await self.proc.stdin.drain()
        answer = await asyncio.wait_for(self.answers.get(), timeout)
        if answer.get("re") == "eof":
            raise RuntimeError(f"client {self.index} died")
        return answer

    def cpu(self) -> float:
        return cpu_s(self.proc.pid)

    def rss(self) -> int:
        return rss_kb(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            self.tell("exit")
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, ConnectionError, BrokenPipeError):
            self.proc.kill()
            await self.proc.wait()
