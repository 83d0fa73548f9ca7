"""The fast lane below ASGI (rooms.transport): the frame it builds is the one autobahn
would send, it writes only to a socket with nothing queued, and what a full socket does not
take stays queued ahead of every later frame."""

import socket
import threading

import pytest
from autobahn.websocket.protocol import PreparedMessage
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

    def flush(self):
        """What Twisted's doWrite does once the socket is writable again."""
        data = self.dataBuffer[self.offset :] + b"".join(self._tempDataBuffer)
        self._tempDataBuffer, self._tempDataLen = [], 0
        self.socket.setblocking(True)
        self.socket.sendall(data)
        self.socket.setblocking(False)
        self.dataBuffer, self.offset = b"", 0


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


def read_frames(sock, count):
    reader = StreamReader()
    sock.setblocking(True)
    sock.settimeout(5)
    frames = []
    parser = None
    while len(frames) < count:
        if parser is None:
            parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
            parser = None
            continue
        reader.feed_data(sock.recv(1 << 16))
    return frames


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
    frames = read_frames(client, len(texts))
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
    flusher = threading.Thread(target=protocol.transport.flush)  # blocks until read
    flusher.start()
    frames = read_frames(client, len(texts))
    flusher.join(5)
    assert [f.data.decode() for f in frames] == texts


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
