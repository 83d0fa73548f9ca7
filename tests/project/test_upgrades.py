"""project/upgrades.py: a WebSocket handshake goes from the connection's first read
straight to the protocol daphne would have built, and gets from daphne and autobahn exactly
what daphne's own path gives it; anything else goes to daphne's own HTTP protocol. The
connections are driven in a process of their own (tests/project/lane_probe.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from project.upgrades import MAX_REQUEST_BYTES, websocket_upgrade

ROOT = Path(__file__).resolve().parents[2]
UPGRADE = (
    b"GET /ws/rooms/7/?lang=fr HTTP/1.1\r\n"
    b"Host: 127.0.0.1:8000\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Cookie: sessionid=abc123\r\n"
    b"\r\n"
)


@pytest.fixture(scope="module")
def probe():
    done = subprocess.run(
        [sys.executable, "-m", "tests.project.lane_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["upgrade", "wrapped"])
def test_a_handshake_skips_daphnes_http_protocol_and_gets_what_daphnes_path_gives(probe, case):
    """``wrapped``: behind a protocol wrapper, as under TLS."""
    lane, daphne = probe[case]["lane"], probe[case]["daphne"]
    assert (lane["websocket"], lane["http protocols built"]) == (True, 0)
    assert lane["scopes"] == daphne["scopes"]
    assert [(s["type"], s["path"], s["query_string"], s["subprotocols"]) for s in lane["scopes"]] == [
        ("websocket", "/ws/rooms/7/", "lang=fr", ["palabre.v1"])
    ]
    assert lane["written"] == daphne["written"]
    assert lane["written"].startswith("HTTP/1.1 101 Switching Protocols\r\n")


@pytest.mark.parametrize(("case", "becomes", "answer"), [
    ("split", "WebSocketProtocol", "HTTP/1.1 101 "),  # the request over two reads
    ("page", "_GenericHTTPChannelProtocol", ""),  # answered by the application, not here
    ("refused", "_GenericHTTPChannelProtocol", "HTTP/1.1 400 Bad Request\r\n"),  # daphne's 400
])
def test_anything_else_goes_to_daphnes_own_http_protocol_with_the_same_result(probe, case, becomes, answer):
    lane, daphne = probe[case]["lane"], probe[case]["daphne"]
    assert lane["http protocols built"] == 1
    assert lane["protocol"] == daphne["protocol"] == becomes
    assert lane["scopes"] == daphne["scopes"]
    assert lane["written"] == daphne["written"]
    assert lane["written"].startswith(answer)
    assert len(lane["scopes"]) == (0 if case == "refused" else 1)


def test_a_handshake_autobahn_refuses_is_refused_as_daphnes_path_refuses_it(probe):
    lane, daphne = probe["not websocket"]["lane"], probe["not websocket"]["daphne"]
    assert lane["http protocols built"] == 0
    assert (lane["scopes"], lane["closing"]) == ([], True)
    assert lane["written"] == daphne["written"] == "HTTP/1.1 400 HTTP Sec-WebSocket-Key header missing\r\n\r\n"


def test_a_connection_that_never_says_anything_is_closed_after_the_http_timeout(probe):
    idle = probe["idle"]
    assert idle["silent"] == {"before": False, "closed": True, "timers": 0}
    # A first read, or the connection's end, stops the lane's timer.
    for case in ("upgrade", "page", "lost"):
        assert idle[case] == {"before": False, "closed": False, "timers": 0}, case


@pytest.mark.parametrize("request_bytes", [
    UPGRADE,
    UPGRADE.replace(b"Upgrade: websocket", b"UPGRADE:   WebSocket "),  # names and this value: any case
])
def test_a_whole_upgrade_request_takes_the_lane_with_its_raw_query_string(request_bytes):
    assert websocket_upgrade(request_bytes) == b"lang=fr"
    assert websocket_upgrade(request_bytes.replace(b"?lang=fr", b"")) == b""


@pytest.mark.parametrize("request_bytes", [
    UPGRADE[:-2],  # not complete in this read
    UPGRADE + b"\x81\x00",  # more than the request
    UPGRADE + UPGRADE,  # two requests
    b"\r\n" + UPGRADE,
])
def test_anything_but_one_whole_request_goes_to_daphnes_path(request_bytes):
    assert websocket_upgrade(request_bytes) is None


CONNECTION = b"Connection: Upgrade"


@pytest.mark.parametrize(("old", "new"), [
    (b"GET ", b"POST "),
    (b"HTTP/1.1", b"HTTP/1.0"),
    (b"GET /ws", b"GET  /ws"),
    (b"GET /ws/rooms/7/", b"GET http://127.0.0.1:8000/ws/rooms/7/"),
    (b"Upgrade: websocket\r\n", b""),
    (b"Upgrade: websocket", b"Upgrade: h2c"),
    (b"Upgrade: websocket", b"Upgrade: websocket\r\nUpgrade: websocket"),
    (b"Cookie: sessionid=abc123", b"Cookie: a=1\r\nCookie: sessionid=abc123"),  # daphne joins them
    (CONNECTION, CONNECTION + b"\r\nContent-Length: 0"),
    (CONNECTION, CONNECTION + b"\r\nTransfer-Encoding: chunked"),
    (CONNECTION, CONNECTION + b"\r\nExpect: 100-continue"),  # Twisted's 100
    (CONNECTION, b"Bad Name: x"),
    (CONNECTION, b"Connection : Upgrade"),
    (CONNECTION, b"Connection"),
    (CONNECTION, CONNECTION + b"\r\n folded"),
    (CONNECTION, b"Connection: Up\ngrade"),
    (CONNECTION, b"Connection: Up\rgrade"),
    (CONNECTION, b"Connection: Up\x00grade"),
    (CONNECTION, b"Connection: Up\x0bgrade"),  # daphne's own refusals
    (CONNECTION, b"Connection: Up\x85grade"),
    (b"/ws/rooms/7/", "/ws/rooms/é/".encode()),
    (b"lang=fr", "lang=français".encode()),
    (b"sessionid=abc123", b"x" * MAX_REQUEST_BYTES),
])
def test_a_request_daphne_would_refuse_or_read_differently_goes_to_daphnes_path(old, new):
    changed = UPGRADE.replace(old, new)
    assert changed != UPGRADE
    assert websocket_upgrade(changed) is None
