"""project/runtime.py: a daphne process starts with the collector tuned (BENCHMARKS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import gc, json, sys, project.asgi; print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count(), sys.getswitchinterval()]))"


def probed(tmp_path, probe: str, **env):
    """What ``probe``, run in a fresh process of its own, prints last (JSON)."""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PALABRE_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def started(tmp_path, **env) -> list:
    return probed(tmp_path, PROBE, **env)


@pytest.mark.parametrize(("env", "threshold", "frozen"), [({}, 50_000, True), ({"PALABRE_GC_GEN0_THRESHOLD": "0"}, 700, False)])
def test_the_asgi_application_tunes_the_collector_once_django_is_set_up(tmp_path, env, threshold, frozen):
    gen0, freeze_count, _ = started(tmp_path, **env)
    assert gen0 == threshold
    assert (freeze_count > 10_000) is frozen


@pytest.mark.parametrize(("env", "interval"), [({}, 0.0001), ({"PALABRE_SWITCH_INTERVAL_S": "0"}, 0.005)])
def test_the_asgi_application_shortens_the_gil_switch_interval(tmp_path, env, interval):
    *_, switch = started(tmp_path, **env)
    assert switch == pytest.approx(interval)


def test_autobahn_formats_its_options_only_when_it_logs_at_debug_level(monkeypatch):
    import pprint

    from autobahn.twisted.websocket import WebSocketServerProtocol
    from autobahn.websocket import protocol

    from project import runtime

    runtime._autobahn_formats_at_debug_only()
    runtime._autobahn_formats_at_debug_only()  # twice: still one wrapper
    options = [("openHandshakeTimeout", 5, "WebSocketServerFactory")]
    assert protocol.pformat(options) == runtime._UNFORMATTED
    monkeypatch.setattr(WebSocketServerProtocol.log, "_log_level", "debug")
    assert protocol.pformat(options) == pprint.pformat(options)
    monkeypatch.delattr(WebSocketServerProtocol.log, "_log_level")  # a txaio that keeps it elsewhere
    assert protocol.pformat(options) == pprint.pformat(options)
    assert protocol.pformat.__wrapped__ is pprint.pformat


def test_the_asgi_application_spares_autobahn_the_formatting(tmp_path):
    probe = "import json, project.asgi; from autobahn.websocket import protocol; print(json.dumps(protocol.pformat([1])))"
    from project import runtime

    assert probed(tmp_path, probe) == runtime._UNFORMATTED


def test_autobahn_colours_the_arguments_of_its_debug_lines_only_at_debug_level(monkeypatch):
    from autobahn import util
    from autobahn.twisted import websocket as twisted_websocket
    from autobahn.twisted.websocket import WebSocketServerProtocol
    from autobahn.websocket import protocol

    from project import runtime

    runtime._autobahn_formats_at_debug_only()
    runtime._autobahn_formats_at_debug_only()  # twice: still one wrapper
    for module in (protocol, twisted_websocket):
        assert module.hlval(12) == "12"
        assert module.hltype(WebSocketServerProtocol.dataReceived) == "<WebSocketAdapterProtocol.dataReceived>"
        assert module.hlval.__wrapped__ is util.hlval
    monkeypatch.setattr(WebSocketServerProtocol.log, "_log_level", "debug")
    assert protocol.hlval(12) == util.hlval(12) != "12"  # coloured, as autobahn writes it
    assert twisted_websocket.hltype(WebSocketServerProtocol.dataReceived) == util.hltype(WebSocketServerProtocol.dataReceived)


def test_a_process_that_imports_the_application_without_serving_it_is_not_pinned(tmp_path):
    """The pin waits for daphne's reactor (tests/wire/test_cpu_pinning.py): the test suite
    and management commands import the application, and their children would inherit
    one CPU."""
    probe = "import json, os, project.asgi; print(json.dumps(sorted(os.sched_getaffinity(0))))"
    assert probed(tmp_path, probe, TMPDIR=str(tmp_path)) == sorted(os.sched_getaffinity(0))
    assert not list(tmp_path.glob("palabre-cpus-*"))


# daphne's factory as daphne's Server.run sets it up, then two sockets built and connected.
DAPHNE_SOCKETS = """
import json, project.asgi
from autobahn.websocket.protocol import WebSocketServerProtocol
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet.testing import StringTransport
factory = WebSocketFactory(None, server="Daphne")
factory.setProtocolOptions(autoPingTimeout=7, allowNullOrigin=True, openHandshakeTimeout=3)
names = WebSocketServerProtocol.CONFIG_ATTRS
out = []
for _ in range(2):
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol.openHandshakeTimeoutCall.cancel()
    out.append({
        "daphne's": isinstance(protocol, WebSocketProtocol),
        "different": [name for name in names if getattr(protocol, name) != getattr(factory, name)],
        "copied": sorted(set(names) & vars(protocol).keys()),
        "set by daphne": [protocol.autoPingTimeout, protocol.allowNullOrigin, protocol.openHandshakeTimeout],
    })
print(json.dumps(out))
"""


def test_daphnes_sockets_read_autobahns_options_from_their_class_instead_of_a_copy_each(tmp_path):
    """autobahn copies its factory's options into every protocol instance, where they stay
    for the socket's life: 2.5 kB per idle connection (BENCHMARKS.md)."""
    assert probed(tmp_path, DAPHNE_SOCKETS) == 2 * [{"daphne's": True, "different": [], "copied": [], "set by daphne": [7, True, 3]}]


# The endpoints daphne builds from -b/-p, -u and -e, as its Server.run listens on them.
DAPHNE_ENDPOINTS = """
import json, project.asgi
from daphne import server
from twisted.internet import reactor
described = ["tcp:port=8000:interface=127.0.0.1", "tcp6:port=8000:interface=\\\\:\\\\:1",
             "unix:/tmp/palabre.sock", "tcp:port=8000:interface=127.0.0.1:backlog=7"]
print(json.dumps([server.serverFromString(reactor, d)._backlog for d in described]))
"""


@pytest.mark.parametrize(("env", "backlogs"), [({}, [4096, 4096, 4096, 7]), ({"PALABRE_LISTEN_BACKLOG": "0"}, [50, 50, 50, 7])])
def test_daphne_listens_with_a_deep_queue_unless_its_endpoint_says_otherwise(tmp_path, env, backlogs):
    """tests/wire/test_listen_queue.py: what the queue is for."""
    assert probed(tmp_path, DAPHNE_ENDPOINTS, **env) == backlogs


# What daphne's HTTP factory starts each accepted connection in (project/upgrades.py).
FIRST_PROTOCOL = """
import json, project.asgi
from daphne.http_protocol import HTTPFactory
print(json.dumps(type(HTTPFactory(None).buildProtocol(None)).__name__))
"""


@pytest.mark.parametrize(("env", "first"), [({}, "UpgradeLane"), ({"PALABRE_UPGRADE_LANE": "false"}, "_GenericHTTPChannelProtocol")])
def test_daphne_starts_every_connection_in_the_upgrade_lane_unless_turned_off(tmp_path, env, first):
    assert probed(tmp_path, FIRST_PROTOCOL, **env) == first
