"""A real daphne and Debian's Chromium, for tests that play a mediation in browsers.

The server runs in its own process with its own data folder (database, keys), so these
tests use no django_db fixture: they see Palabre only through HTTP and WebSockets, as
people do. Screenshots go to test-artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env, *args) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Server:
    url: str
    env: dict
    log: Path

    def demo(self, consumers: int = 2) -> dict:
        """(Re)creates the demo mediation; returns PROTOCOL.md's demo JSON."""
        out = _manage(self.env, "demo", "--json", "--consumers", str(consumers))
        return json.loads(out.strip().splitlines()[-1])

    def shell(self, code: str) -> str:
        """Runs Python in the server's project and database (not in its process)."""
        return _manage(self.env, "shell", "-c", code)

    def run_deadlines(self) -> None:
        """One deadline pass. The embedded default runs its own in daphne: only daphne's
        in-memory layer reaches its sockets, so an outside pass runs only with Redis."""
        if self.env.get("REDIS_URL"):
            _manage(self.env, "run_deadlines", "--once")


@pytest.fixture(scope="package")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("palabre-browser")
    # The pass's database and channel layer (if any) are kept: the PostgreSQL + Redis
    # pass plays the same mediation on the production stack.
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "DEBUG", "PALABRE_DATA_DIR"}}
    env.update(PALABRE_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    _manage(env, "migrate", "--noinput")
    port = _free_port()
    log = data / "daphne.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"daphne exited:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"daphne not healthy in 30 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield Server(url=url, env=env, log=log)
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def _stop_room_hub():
    """Overrides tests/conftest.py's async clean-up of the in-process room hub: these
    tests run no hub in-process (daphne has its own), and an async fixture would run an
    event loop around Playwright's sync API, which refuses to work inside one."""
    yield


# Package scope, not session: while Playwright's sync API is alive it keeps an event loop
# running in the main thread, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class Person:
    """One person in their own browser context (cookies, storage, network of their own)."""

    def __init__(self, browser, server: Server, user: dict, *, viewport=DESKTOP, locale="fr-FR"):
        self.user, self.server = user, server
        self.context = browser.new_context(viewport=viewport, locale=locale, base_url=server.url)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def login(self, path: str = "/") -> None:
        self.page.goto(path)
        form = self.page.locator("form.login")
        form.locator("input[name=username]").fill(self.user["username"])
        form.locator("input[name=password]").fill(self.user["password"])
        form.locator("button[type=submit]").click()
        self.page.locator(".logout").wait_for()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser, server):
    opened: list[Person] = []

    def open_(user: dict, **kwargs) -> Person:
        person = Person(browser, server, user, **kwargs)
        opened.append(person)
        return person

    yield open_
    for person in opened:
        person.close()
