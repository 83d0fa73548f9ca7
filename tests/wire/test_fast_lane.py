"""The broadcast fast lane (rooms.transport) on a real daphne: every member gets every frame
intact and in order, whether it reads as fast as the room talks (fast lane) or stalls long
enough for the server's socket buffer to fill (its frames then queue behind the backlog on
the normal ASGI path), and a member whose socket vanished mid-stream is skipped."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
MESSAGES = 300
# ~16 kB a frame (4-byte characters): 4.8 MB in all, more than loopback TCP buffers hold
# for a reader that stalls (tcp_wmem tops at 4 MB), so its frames must queue server-side.
BODY = "\U0001F600" * 3990

pytestmark = pytest.mark.wire


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("fast-lane")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALABRE_", "DJANGO_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        env.pop(name, None)
    env.update(
        PALABRE_DATA_DIR=str(data),
        PALABRE_RATE_PER_S="100000",
        PALABRE_RATE_BURST="100000",
        # Large enough that the stalled reader is not closed with 4409: it must catch up.
        PALABRE_MAX_BACKLOG_BYTES=str(64 * 1024 * 1024),
    )
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, cwd=ROOT, check=True, capture_output=True)
    out = subprocess.run(
        [*manage, "demo", "--json", "--consumers", "3", "--sessions"],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    demo = json.loads(out.strip().splitlines()[-1])
    port = _free_port()
    log = data / "daphne.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            # daphne drops a socket that misses its pings for 50 s: the stalled reader must
            # not be taken for dead while the room talks.
            [DAPHNE, "-b", "127.0.0.1", "-p", str(port), "--ping-interval", "600",
             "--ping-timeout", "600", "project.asgi:application"],
            env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    yield {"port": port, "demo": demo, "log": log}
    proc.terminate()
    proc.wait(10)


async def _open(server, role_index: int, **options):
    port, demo = server["port"], server["demo"]
    user = demo["users"][role_index]
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/rooms/{demo['room_id']}/",
        origin=f"http://127.0.0.1:{port}",
        additional_headers=[("Cookie", f"sessionid={user['session']}")],
        compression=None,
        ping_interval=None,
        max_size=2**20,
        **options,
    )
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    return ws, welcome["last_seq"]


async def _chat_messages(ws, count: int, timeout: float = 60) -> list[dict]:
    got = []
    while len(got) < count:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == "chat.message":
            got.append(frame)
    return got


async def test_fast_and_stalled_readers_get_every_frame_in_order_and_a_vanished_one_is_skipped(server):
    users = server["demo"]["users"]
    mediator = next(i for i, u in enumerate(users) if u["role"] == "mediator")
    consumers = [i for i, u in enumerate(users) if u["role"] == "consumer"]
    sender, first_seq = await _open(server, mediator)
    fast, _ = await _open(server, consumers[0])
    # A reader that stalls: with a one-frame queue the client stops reading its socket, the
    # kernel's receive buffer (not autotuned while nobody reads) fills, TCP's window closes
    # and the server's socket buffer fills in turn.
    stalled, _ = await _open(server, consumers[1], max_queue=1)
    vanishing, _ = await _open(server, consumers[2])

    fast_reader = asyncio.create_task(_chat_messages(fast, MESSAGES))
    for i in range(MESSAGES):
        await sender.send(json.dumps({"type": "chat.send", "body": f"{i:04d}{BODY}", "ref": str(i)}))
        if i == 20:
            vanishing.transport.abort()  # gone without a closing handshake
    echoes = await _chat_messages(sender, MESSAGES)
    fast_got = await fast_reader
    await asyncio.sleep(1.0)  # the stalled reader's frames pile up server-side meanwhile
    stalled_got = await _chat_messages(stalled, MESSAGES)

    expected = [f"{i:04d}{BODY}" for i in range(MESSAGES)]
    for got in (echoes, fast_got, stalled_got):
        assert [f["body"] for f in got] == expected
        assert [f["seq"] for f in got] == list(range(first_seq + 1, first_seq + 1 + MESSAGES))
    for ws in (sender, fast, stalled):
        await ws.close()
    await asyncio.sleep(0.5)
    log = server["log"].read_text()
    assert "Traceback" not in log, log[-3000:]
