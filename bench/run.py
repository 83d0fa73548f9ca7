"""``make bench``: Palabre measured against its baselines in one run, on this machine.

    .venv/bin/python bench/run.py            # the full run (about 15 minutes)
    .venv/bin/python bench/run.py --quick    # a smaller one (about 2-3 minutes)

Loopback only; every phase is bounded in time and stops by itself. Rewrites BENCHMARKS.md
(everything but its "## Crypto" section) and keeps the raw figures in
``<run dir>/results.json``. See bench/systems.py for what runs, bench/phases.py for how
it is measured, bench/report.py for what is written.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import phases, report, systems  # noqa: E402
from bench.procs import PYTHON, ROOT, loadavg, port_open  # noqa: E402

FULL = {
    "rooms": {"D": [100, 1_000, 10_000], "A": [100, 1_000, 10_000], "P1": [100, 1_000],
              "P2": [100, 1_000, 10_000, 20_000]},
    "floor": [100, 1_000, 10_000],  # F: connections only
    # The connection steps of the targets, measured several times each (phases.connect_step):
    # a 1,000 step is cheap and its ratio the noisiest, five runs; a 10,000 step, three. Not
    # A's, whose connections are no target.
    "repeat": {"at": [[1_000, 5], [10_000, 3]], "systems": ["D", "P1", "P2", "F"]},
    "profile": "P2",  # at 20,000 members: 10,000 on the profiled daphne
    "messages": 20, "budget_s": 25, "wait_s": 30,
    "idle_s": 40,  # two keepalive pings per socket
    "small_rooms": ["A", "P1", "P2"],
    # Up to 128,000 deliveries a second: on a faster machine every rate up to 32,000
    # passed, and the ratio to A was a floor, not a measure.
    # Three searches each, the median's result kept (phases.small_rooms).
    "rung": {"warm": 1.0, "dur": 3.0, "drain": 2.0, "start": 125, "max": 128_000, "bisections": 3, "searches": 3},
    "votes": 10_000,
    # Toward 150,000 members: as far as 15 minutes of connecting get on this machine.
    "big": {"target": 150_000, "budget_s": 900, "min_free_mb": 3_000},
}
QUICK = {
    "rooms": {"D": [100, 1_000], "A": [1_000], "P1": [100, 1_000], "P2": [1_000, 2_000]},
    "floor": [1_000],
    "repeat": {"at": [[1_000, 5]], "systems": ["D", "P1", "P2", "F"]},
    "profile": "P1",
    "messages": 10, "budget_s": 10, "wait_s": 15,
    "idle_s": 21,
    "small_rooms": ["A", "P1"],
    "rung": {"warm": 0.5, "dur": 2.0, "drain": 2.0, "start": 125, "max": 8_000, "bisections": 0, "searches": 1},
    "votes": 1_000,
    "big": None,
}


def log(message: str) -> None:
    print(message, flush=True)


def raise_file_limit() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def ensure_services() -> None:
    if port_open(6379) and port_open(5432):
        return
    log("==> starting PostgreSQL and Redis (scripts/services.sh)")
    subprocess.run([str(ROOT / "scripts" / "services.sh")], check=True)


def ensure_bench_extra() -> None:
    if not (ROOT / ".venv" / "bin" / "py-spy").exists() or importlib.util.find_spec("uvloop") is None:
        log("==> installing the bench extra (py-spy, uvloop) into .venv")
        subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[bench]"], check=True)


def clients_for(n: int) -> int:
    return 2 if n <= 2_000 else 4


async def main(args) -> int:
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    limits = raise_file_limit()
    ensure_services()
    ensure_bench_extra()
    run_dir = Path(tempfile.mkdtemp(prefix="palabre-bench-"))
    log(f"==> bench run in {run_dir} ({'quick' if args.quick else 'full'}); load {loadavg()}")
    results = {
        "quick": args.quick, "command": "make bench" if len(sys.argv) == 1 else "bench/run.py " + " ".join(sys.argv[1:]),
        "machine": report.machine(limits), "load_before": loadavg(), "uptime_before": _uptime(),
        "rooms": [], "floor": [], "small_rooms": [], "errors": [],
    }
    secrets_env = systems.production_secrets()
    made = {
        "D": lambda: systems.BaselineD(run_dir),
        "A": lambda: systems.BaselineA(run_dir),
        "F": lambda: systems.BaselineF(run_dir),
        "P1": lambda: systems.Palabre(run_dir, production=False, processes=1),
        "P2": lambda: systems.Palabre(run_dir, production=True, processes=2, secrets_env=secrets_env),
    }
    cache: dict = {}

    def system(key):
        if key not in cache:
            cache[key] = made[key]()
            cache[key].setup()
        return cache[key]

    only = set(args.only.split(",")) if args.only else None
    # Every room and F with as many client processes, those the biggest room needs: each
    # N is then measured alike for every system (P1 stops at 1,000 but is compared with
    # D's 1,000 step, which D reaches on its way to 10,000).
    room_clients = clients_for(max(max(steps) for steps in plan["rooms"].values()))

    results["room_clients"], results["repeat"] = room_clients, plan["repeat"]

    def repeat(key):
        return plan["repeat"] if key in plan["repeat"]["systems"] else None

    for key in ("D", "A", "P1", "P2"):
        if only and key not in only or not plan["rooms"].get(key):
            continue
        steps = plan["rooms"][key]
        log(f"==> room: {key}, growing through {', '.join(f'{n:,}' for n in steps)} members ({time.monotonic() - started:.0f}s)")
        profile_dir = run_dir / "profile" if plan["profile"] == key else None
        try:
            results["rooms"] += await phases.room(
                system(key), steps, room_clients, plan["messages"], plan["budget_s"], plan["wait_s"],
                profile_dir=profile_dir, idle_s=plan["idle_s"], repeat=repeat(key), log=log,
            )
        except Exception as exc:  # noqa: BLE001 - a failed phase is reported, the run goes on
            traceback.print_exc()
            results["errors"].append(f"room {key}: {type(exc).__name__}: {exc}"[:500])
    if plan["floor"] and (not only or "F" in only):
        log(f"==> connections: F, an accept-only Channels consumer ({time.monotonic() - started:.0f}s)")
        try:
            results["floor"] = await phases.connections(system("F"), plan["floor"], room_clients, repeat=repeat("F"), log=log)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            results["errors"].append(f"connections F: {type(exc).__name__}: {exc}"[:500])
    if not args.skip_small_rooms:
        for key in plan["small_rooms"]:
            if only and key not in only:
                continue
            log(f"==> 100 rooms × 10: {key} ({time.monotonic() - started:.0f}s)")
            r = plan["rung"]
            try:
                results["small_rooms"].append(await phases.small_rooms(
                    system(key), 100, 10, 2, r["warm"], r["dur"], r["drain"], r["start"], r["max"],
                    r["bisections"], r["searches"], log=log,
                ))
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc()
                results["errors"].append(f"small rooms {key}: {type(exc).__name__}: {exc}"[:500])
    log(f"==> sealing 150,000 commitments ({time.monotonic() - started:.0f}s)")
    results["seal"] = seal_bench()
    if not (ROOT / "ballots" / "actions.py").exists():
        results["votes_skipped"] = "the ballot backend (ballots/) has not landed"
    elif plan["votes"] and not args.skip_votes and (not only or "P2" in only):
        log(f"==> votes: {plan['votes']:,} consumers on PostgreSQL ({time.monotonic() - started:.0f}s)")
        try:
            results["votes"] = await phases.votes(system("P2"), plan["votes"], clients_for(plan["votes"]), log=log)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            results["errors"].append(f"votes: {type(exc).__name__}: {exc}"[:500])
    if plan["big"] and not args.skip_big and (not only or "P2" in only):
        big = plan["big"]
        log(f"==> the big room: toward {big['target']:,} members ({time.monotonic() - started:.0f}s)")
        try:
            results["big"] = await phases.big_room(
                lambda processes: _big_system(run_dir, secrets_env, processes),
                big["target"], big["budget_s"], big["min_free_mb"], idle_s=plan["idle_s"], log=log,
            )
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            results["errors"].append(f"big room: {type(exc).__name__}: {exc}"[:500])
    results["load_after"] = loadavg()
    results["uptime_after"] = _uptime()
    results["duration_s"] = time.monotonic() - started
    (run_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    out = Path(args.output)
    report.write(out, results, run_dir)
    log(f"==> wrote {out} in {results['duration_s']:.0f}s (raw figures: {run_dir / 'results.json'})")
    return 0


def _big_system(run_dir, secrets_env, processes):
    system = systems.Palabre(run_dir, production=True, processes=processes, secrets_env=secrets_env)
    return system


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def seal_bench() -> dict:
    """Merkle root + Ed25519 seal over 150,000 commitments, with crypto/ directly."""
    code = r"""
import json, sys, time
sys.path.insert(0, ".")
from crypto import merkle, signing
from django.conf import settings
settings.configure(PALABRE_SEALING_KEYS=signing.generate_sealing_keys())
leaves = [merkle.leaf_hash(merkle.new_receipt(), "ballot-1", "accept" if i % 4 else "refuse") for i in range(150_000)]
runs = []
for _ in range(5):
    t = time.perf_counter()
    root = merkle.merkle_root(leaves)
    doc = {"version": 1, "ballot_id": "ballot-1", "eligible": 150000, "merkle_root": root}
    signature, key_id = signing.sign(doc)
    runs.append(time.perf_counter() - t)
assert signing.verify(doc, signature, key_id)
print(json.dumps({"leaves": len(leaves), "runs_s": runs}))
"""
    try:
        out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env=systems.base_env())
        data = json.loads(out.stdout.strip().splitlines()[-1])
        data["median_s"] = sorted(data["runs_s"])[len(data["runs_s"]) // 2]
        return data
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc} {getattr(exc, 'stderr', '')[-500:] if hasattr(exc, 'stderr') else ''}"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run, about 2-3 minutes")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--only", help="comma-separated systems: D,A,F,P1,P2")
    parser.add_argument("--skip-small-rooms", action="store_true")
    parser.add_argument("--skip-votes", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    os.chdir(ROOT)
    sys.exit(asyncio.run(main(parser.parse_args())))
