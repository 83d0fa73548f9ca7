"""A local OSV ``/v1/query`` endpoint over the committed advisory snapshot
(security/advisories/), for pip-audit (``-s osv --osv-url``) where api.osv.dev is out of
reach. Standard library and ``packaging`` only.

    .venv/bin/python security/osv_server.py [--port 0]

Binds 127.0.0.1, prints the port on the first line of stdout, serves until killed.

A query ``{"package": {"name", "ecosystem": "PyPI"}, "version"}`` is answered as OSV does:
``{"vulns": [...]}`` with every advisory whose ``affected`` entry for that package lists
the version in ``versions`` or contains it in an ``ECOSYSTEM`` range (OSV's evaluation:
events in version order, ``introduced`` opens, ``fixed`` closes before it,
``last_affected`` closes after it; https://ossf.github.io/osv-schema/#evaluation), and
``{}`` when none. Versions are compared with ``packaging.version``. A package outside the
snapshot, or a version that doesn't parse, is answered 404 / 400: never "no
vulnerability" for what the snapshot can't tell.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ADVISORIES = Path(__file__).resolve().parent / "advisories"


def load(root: Path = ADVISORIES) -> tuple[dict, dict[str, list[dict]]]:
    snapshot = json.loads((root / "snapshot.json").read_text())
    by_package: dict[str, list[dict]] = {name: [] for name in snapshot["packages"]}
    for path in sorted((root / "vulns").glob("*/*.json")):
        by_package.setdefault(path.parent.name, []).append(json.loads(path.read_text()))
    return snapshot, by_package


def _lowest(value: str) -> Version | None:
    """None stands for OSV's ``introduced: "0"``, before every version."""
    return None if value == "0" else Version(value)


def in_range(version: Version, events: list[dict]) -> bool:
    def key(event: dict):
        (value,) = event.values()
        bound = _lowest(value)
        return (bound is not None, bound or Version("0"))

    affected = False
    for event in sorted((e for e in events if set(e) & {"introduced", "fixed", "last_affected"}), key=key):
        if "introduced" in event:
            bound = _lowest(event["introduced"])
            if bound is None or version >= bound:
                affected = True
        elif "fixed" in event:
            if version >= Version(event["fixed"]):
                affected = False
        elif version > Version(event["last_affected"]):
            affected = False
    return affected


def affects(advisory: dict, package: str, version: Version) -> bool:
    for affected in advisory.get("affected", []):
        pkg = affected.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or canonicalize_name(pkg.get("name", "")) != package:
            continue
        listed = affected.get("versions", [])
        if str(version) in listed or any(_equal(v, version) for v in listed):
            return True
        for range_ in affected.get("ranges", []):
            if range_.get("type") == "ECOSYSTEM" and in_range(version, range_.get("events", [])):
                return True
    return False


def _equal(listed: str, version: Version) -> bool:
    try:
        return Version(listed) == version
    except InvalidVersion:
        return False


def query(by_package: dict[str, list[dict]], body: dict) -> tuple[int, dict]:
    package = body.get("package") or {}
    if package.get("ecosystem") != "PyPI" or not package.get("name") or not body.get("version"):
        return 400, {"code": 3, "message": "this endpoint answers {package: {name, ecosystem: PyPI}, version} only"}
    name = canonicalize_name(package["name"])
    if name not in by_package:
        return 404, {"code": 5, "message": f"{name} is not in the advisory snapshot: refresh it (security/snapshot.py)"}
    try:
        version = Version(body["version"])
    except InvalidVersion:
        return 400, {"code": 3, "message": f"invalid version {body['version']!r}"}
    vulns = [a for a in by_package[name] if affects(a, name, version)]
    return 200, ({"vulns": vulns} if vulns else {})


def serve(port: int = 0) -> None:
    snapshot, by_package = load()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path.rstrip("/") != "/v1/query":
                return self._answer(404, {"code": 5, "message": "only /v1/query"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            except ValueError:
                return self._answer(400, {"code": 3, "message": "not JSON"})
            self._answer(*query(by_package, body if isinstance(body, dict) else {}))

        def _answer(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # pip-audit's output is the report; not one line per query
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(server.server_address[1], flush=True)
    print(f"osv snapshot: pypa/advisory-database {snapshot['commit']} of {snapshot['date']}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    serve(parser.parse_args().port)
