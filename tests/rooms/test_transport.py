"""The fast lane below ASGI (rooms.transport): the frame it builds is the one autobahn
would send, it writes only to a socket with nothing queued, and what a full socket does not
take stays queued ahead of every later frame."""

import contextlib
import gc
import socket
import weakref

import pytest
from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from rooms import transport


@pytest.mark.parametrize("size", [0, 1, 125, 126, 1000, 65535, 65536, 70_000])
def test_prepare_is_autobahns_unmasked_text_frame(size):
    text = ("é" * size)[:size] if size % 2 else "a" * size
    payload = text.encode()
    assert transport.prepare(text) == PreparedMessage(payload, False, False, True).payloadHybi


class FakeTransport:
    """The part of Twisted's tcp.Connection the fast lane reads, over a real socket;
    ``write`` queues as Twisted does (nothing reaches the socket until ``flush``)."""

    TLS = False

    def __init__(self, sock):
        self.socket = sock
        self.connected = True
        self.disconnecting = False
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataBuffer = []
        self._tempDataLen = 0

    def write(self, data):
        self._tempDataBuffer.append(data)
        self._tempDataLen += len(data)

    def flush_some(self) -> int:
        """What Twisted's doWrite does when the socket is writable: send what it takes
        now, without blocking, keeping the rest queued in order; the bytes sent."""
        self.dataBuffer = self.dataBuffer[self.offset :] + b"".join(self._tempDataBuffer)
        self._tempDataBuffer, self._tempDataLen, self.offset = [], 0, 0
        try:
            self.offset = self.socket.send(self.dataBuffer) if self.dataBuffer else 0
        except BlockingIOError:
            self.offset = 0
        return self.offset


class FakeProtocol:
    state = 3  # STATE_OPEN
    _perMessageCompress = None

    def __init__(self, sock):
        self.transport = FakeTransport(sock)
        self.send_queue = []
        self.normal_path = []

    def send_normally(self, text):
        """The ASGI path's end: autobahn frames it and Twisted queues it."""
        self.normal_path.append(text)
        self.transport.write(transport.prepare(text))


def push(protocol, text):
    """What the hub and consumer do: the fast lane, else the normal path."""
    if not transport.write_now(protocol, transport.prepare(text)):
        protocol.send_normally(text)


class FrameReader:
    """The client's end, read without blocking: every complete frame so far."""

    def __init__(self, sock):
        self.sock, self.reader, self.frames = sock, StreamReader(), []
        self.parser = None
        sock.setblocking(False)

    def read_available(self) -> int:
        """Reads what the socket holds now and parses it; the bytes read."""
        got = 0
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            assert data, "the server's end was closed"
            self.reader.feed_data(data)
            got += len(data)
        while True:
            if self.parser is None:
                self.parser = Frame.parse(self.reader.read_exact, mask=False)
            try:
                next(self.parser)
            except StopIteration as done:
                self.frames.append(done.value)
                self.parser = None
                continue
            return got


def pump(protocol, client, count: int) -> list:
    """Turns of an event loop, in one thread: the server's transport sends what the socket
    takes, the client reads what arrived, until ``count`` frames are read. No thread, no
    timeout: a turn where neither side moves a byte fails at once instead of waiting."""
    reader = FrameReader(client)
    while len(reader.frames) < count:
        moved = protocol.transport.flush_some() + reader.read_available()
        assert moved or len(reader.frames) >= count, f"stuck after {len(reader.frames)} of {count} frames"
    return reader.frames


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


def test_frames_reach_a_reader_intact_and_in_order(pair):
    server, client = pair
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    protocol = FakeProtocol(server)
    texts = [f"message {i} " + "x" * (i % 7) for i in range(50)]
    for text in texts:
        push(protocol, text)
    assert protocol.normal_path == []  # a reader keeping up: every frame took the fast lane
    frames = pump(protocol, client, len(texts))
    assert [f.opcode for f in frames] == [Opcode.TEXT] * len(texts)
    assert all(f.fin for f in frames)
    assert [f.data.decode() for f in frames] == texts


def test_a_slow_reader_gets_the_normal_path_behind_its_backlog_in_order(pair):
    server, client = pair
    protocol = FakeProtocol(server)
    texts = [f"{i:04d}:" + "é" * 3000 for i in range(40)]  # far more than the socket buffers
    for text in texts:
        push(protocol, text)
    # The socket filled up: the rest of the frame it was taking, then every later frame,
    # went to the transport's queue, in order.
    assert protocol.transport._tempDataLen > 0
    assert protocol.normal_path == texts[len(texts) - len(protocol.normal_path) :]
    assert 0 < len(protocol.normal_path) < len(texts)
    assert not transport.write_now(protocol, transport.prepare("later"))
    frames = pump(protocol, client, len(texts))
    assert [f.data.decode() for f in frames] == texts
    assert transport.backlog_bytes(protocol) == 0


def test_nothing_is_written_to_a_socket_that_is_not_open(pair):
    server, client = pair
    protocol = FakeProtocol(server)
    protocol.state = 2  # closing
    assert not transport.write_now(protocol, transport.prepare("x"))
    protocol.state = 3
    protocol.transport.connected = False
    assert not transport.write_now(protocol, transport.prepare("x"))
    protocol.transport.connected = True
    protocol.transport.disconnecting = True
    assert not transport.write_now(protocol, transport.prepare("x"))
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(10)


def test_tls_compression_and_autobahns_own_queue_take_the_normal_path(pair):
    server, _client = pair
    protocol = FakeProtocol(server)
    protocol.transport.TLS = True
    assert not transport.write_now(protocol, transport.prepare("x"))
    protocol.transport.TLS = False
    protocol._perMessageCompress = object()
    assert not transport.write_now(protocol, transport.prepare("x"))
    protocol._perMessageCompress = None
    protocol.send_queue = [(b"ping", True)]
    assert not transport.write_now(protocol, transport.prepare("x"))


def test_a_reset_socket_is_left_to_the_normal_path(pair):
    server, client = pair
    protocol = FakeProtocol(server)
    client.close()
    # The first write may still be accepted by the kernel; then the peer is gone.
    results = [transport.write_now(protocol, transport.prepare("x" * 100)) for _ in range(3)]
    assert results[-1] is False


def test_is_open_only_while_the_websocket_is_open(pair):
    server, _client = pair
    protocol = FakeProtocol(server)
    assert transport.is_open(protocol)
    protocol.state = 2
    assert not transport.is_open(protocol)


class Member:
    def __init__(self, fast: bool, broken: bool = False):
        self.fast, self.broken, self.got = fast, broken, []

    def push_now(self, frame):
        if self.broken:
            raise RuntimeError("Attempt to send on a closed protocol")
        if self.fast:
            self.got.append(frame)
        return self.fast

    async def push(self, text):
        self.got.append(text)


async def test_one_failing_socket_never_costs_the_rest_of_the_room_its_frame():
    from rooms.hub import Hub

    members = [Member(fast=True), Member(fast=False, broken=True), Member(fast=False), Member(fast=True)]
    await Hub().deliver(members, '{"type":"chat.message"}')
    frame = transport.prepare('{"type":"chat.message"}')
    assert [m.got for m in members] == [[frame], [], ['{"type":"chat.message"}'], [frame]]


def test_an_open_socket_forgets_its_upgrade_request_but_not_its_path():
    """What daphne and autobahn keep of the HTTP upgrade for a socket's whole life goes
    once the socket is open (about 2 kB per idle connection); daphne still logs the path
    when the socket closes."""
    from autobahn.websocket.types import ConnectionRequest

    headers = {"host": "127.0.0.1", "cookie": "sessionid=" + "x" * 32}
    scope_headers = [(b"host", b"127.0.0.1"), (b"cookie", b"sessionid=" + b"x" * 32)]
    protocol = type("Protocol", (), {})()
    protocol.http_request_data = b"GET /ws/rooms/1/ HTTP/1.1\r\n" + b"x" * 500
    protocol.http_headers = headers
    protocol.request = ConnectionRequest(
        peer="tcp:127.0.0.1:5000", headers=headers, host="127.0.0.1", path="/ws/rooms/1/",
        params={}, version=13, origin="http://127.0.0.1", protocols=[], extensions=[],
    )
    protocol.clean_headers = scope_headers
    scope = {"type": "websocket", "headers": scope_headers}

    transport.forget_upgrade_request(protocol)

    assert protocol.http_request_data == b""
    assert protocol.request.headers == {} and protocol.request.path == "/ws/rooms/1/"
    assert scope["headers"] == []


@contextlib.contextmanager
def collector_off():
    """Only reference counting frees anything meanwhile: what is freed was no cycle."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def test_an_open_socket_lets_the_http_channel_of_its_upgrade_go():
    """daphne leaves Twisted's HTTP channel (and with it its request for the upgrade)
    registered as the socket's producer for the socket's whole life. Once let go, the
    channel and its request are freed at once, not left to the garbage collector as a
    cycle (each request names its channel, each channel its requests)."""
    channel = HTTPChannel()
    socket_transport = StringTransport()
    channel.makeConnection(socket_transport)
    channel.requests.append(Request(channel))  # the upgrade request, which never finishes
    assert socket_transport.producer is channel
    protocol = type("Protocol", (), {})()
    protocol.transport = socket_transport
    gone = [weakref.ref(channel), weakref.ref(channel.requests[0])]
    del channel

    with collector_off():
        transport.forget_upgrade_request(protocol)
        assert [ref() for ref in gone] == [None, None]
    assert socket_transport.producer is None and not socket_transport.disconnecting


def closed_autobahn_socket():
    """A server protocol of autobahn's, closed by autobahn itself."""
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    protocol = WebSocketServerProtocol()
    protocol.factory = WebSocketServerFactory()
    protocol.makeConnection(StringTransport())
    protocol.connectionLost(Failure(ConnectionDone()))
    return protocol


def test_a_closed_socket_is_freed_at_once_not_left_to_the_collector():
    """autobahn resolves a socket's ``is_closed`` with its protocol: a cycle that kept
    every closed socket (its protocol, its transport) for the garbage collector."""
    protocol = closed_autobahn_socket()
    assert protocol.is_closed.result is protocol  # what autobahn does at a close
    gone = [weakref.ref(protocol), weakref.ref(protocol.transport)]

    with collector_off():
        transport.forget_closed_socket(protocol)
        del protocol
        assert [ref() for ref in gone] == [None, None]


async def test_the_room_socket_lets_its_closed_socket_go_when_it_disconnects():
    """The consumer, refused or accepted, finds daphne's protocol behind its ``send``
    (daphne builds it as ``partial(server.handle_reply, protocol)``)."""
    import functools

    from rooms.consumers import RoomConsumer

    protocol = closed_autobahn_socket()
    consumer = RoomConsumer()
    consumer.base_send = functools.partial(lambda protocol, message: None, protocol)

    await consumer.disconnect(1006)

    assert protocol.is_closed.called and protocol.is_closed.result is None
