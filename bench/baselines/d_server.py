"""Baseline D: a plain `websockets` server. Each frame is parsed once and the one
serialised answer is ``websockets.broadcast()`` to the room's set of connections
(the room is the URL path)."""

import argparse
import asyncio
import json
import logging

import websockets
from websockets.asyncio.server import serve

rooms: dict[str, set] = {}


async def handler(ws):
    members = rooms.setdefault(ws.request.path, set())
    members.add(ws)
    try:
        async for text in ws:
            message = json.loads(text)["message"]
            websockets.broadcast(members, json.dumps({"message": message}))
    finally:
        members.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, compression=None, max_size=2**20, backlog=1024):
        print(f"listening on {host}:{port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.host, args.port))
