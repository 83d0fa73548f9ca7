"""The measurements. Every system is driven by the same client processes (bench/client.py);
CPU is utime+stime from /proc of the server processes (and of the clients and Redis,
reported apart); memory is the servers' RSS."""

from __future__ import annotations

import asyncio
import math
import signal
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.procs import ROOT, Client, loadavg, mem_available_mb

PYSPY = str(ROOT / ".venv" / "bin" / "py-spy")


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def sources(n: int) -> list[str | None]:
    """Source addresses: past ~12,000 sockets, spread over 127.0.0.2-5 so that ephemeral
    ports (28,000 per source address) never run out, whatever TIME_WAIT holds."""
    if n <= 12_000:
        return [None]
    return [f"127.0.0.{2 + i}" for i in range(max(4, math.ceil(n / 12_000)))]


async def start_clients(dialect: str, count: int) -> list[Client]:
    return list(await asyncio.gather(*(Client(dialect, i).start() for i in range(count))))


async def stop_clients(clients: list[Client]) -> None:
    await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)


def clients_cpu(clients: list[Client]) -> float:
    return sum(c.cpu() for c in clients)


async def connect(system, clients, receivers: list[dict], concurrency: int = 25) -> dict:
    """Opens the receivers' sockets, spread over the client processes, and measures the
    servers' CPU and RSS growth per connection (after 1 s idle)."""
    addrs = sources(len(receivers))
    for i, target in enumerate(receivers):
        if "l" not in target and addrs[0] is not None:
            target["l"] = addrs[i % len(addrs)]
    parts = [receivers[i :: len(clients)] for i in range(len(clients))]
    await asyncio.sleep(0.5)
    cpu0, rss0, ccpu0 = system.cpu(), system.rss(), clients_cpu(clients)
    redis_cpu0, redis_mem0 = system.redis_cpu(), _redis_mem(system)
    start = time.monotonic()
    answers = await asyncio.gather(
        *(c.ask("connect", targets=part, concurrency=concurrency, timeout=1800) for c, part in zip(clients, parts, strict=True))
    )
    wall = time.monotonic() - start
    await asyncio.sleep(1.0)
    cpu1, rss1, ccpu1 = system.cpu(), system.rss(), clients_cpu(clients)
    connected = sum(a["connected"] for a in answers)
    for c, a in zip(clients, answers, strict=True):
        c.receivers += a["connected"]
    errors: Counter = Counter()
    handshakes: list[float] = []
    for a in answers:
        errors.update(a["errors"])
        handshakes += a["handshakes"]
    per = max(connected, 1)
    return {
        "n": len(receivers),
        "connected": connected,
        "wall_s": wall,
        "conn_per_s": connected / wall if wall else None,
        "handshake_p50_ms": _ms(pct(handshakes, 0.5)),
        "handshake_p99_ms": _ms(pct(handshakes, 0.99)),
        "server_cpu_ms_per_conn": (cpu1 - cpu0) * 1000 / per,
        "client_cpu_ms_per_conn": (ccpu1 - ccpu0) * 1000 / per,
        "redis_cpu_ms_per_conn": (system.redis_cpu() - redis_cpu0) * 1000 / per if system.uses_redis else None,
        "server_rss_mb_before": rss0 / 1024,
        "server_rss_mb_after": rss1 / 1024,
        "rss_kb_per_conn": (rss1 - rss0) / per,
        "redis_bytes_per_conn": (_redis_mem(system) - redis_mem0) / per if system.uses_redis else None,
        "client_rss_mb": sum(c.rss() for c in clients) / 1024,
        "errors": dict(errors),
    }


async def connect_step(system, clients, receivers: list[dict], times: int = 1) -> dict:
    """``connect`` for a step's new members, measured ``times`` times: after the first,
    the members drop (an RST each) and, once the servers are quiet again, connect again,
    into the same room in the same state. A step of 1,000 lasts a fraction of a second
    and the machine is shared: one step's noise could decide a ratio. The server and
    client CPU per connection are the median of the runs (each run is kept); memory,
    wall time and handshake times are the first run's, when the members joined for the
    first time."""
    first = await connect(system, clients, receivers)
    runs = [first]
    for _ in range(times - 1):
        answers = await asyncio.gather(*(c.ask("drop") for c in clients))
        for c, answer in zip(clients, answers, strict=True):
            c.receivers -= answer["dropped"]
        await quiet(system)
        runs.append(await connect(system, clients, receivers))
    if times > 1:
        for key in ("server_cpu_ms_per_conn", "client_cpu_ms_per_conn", "redis_cpu_ms_per_conn"):
            if first[key] is not None:
                first[key + "_runs"] = [run[key] for run in runs]
                first[key] = statistics.median(first[key + "_runs"])
        first["runs_connected"] = [run["connected"] for run in runs]
        first["errors"] = dict(sum((Counter(run["errors"]) for run in runs), Counter()))
    return first


async def quiet(system, window_s: float = 0.5, cores: float = 0.05, limit_s: float = 20.0) -> None:
    """Waits until the servers use less than ``cores`` of a core over a ``window_s``
    window (what dropped connections cost them is over), ``limit_s`` at most."""
    deadline = time.monotonic() + limit_s
    before = system.cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(window_s)
        now = system.cpu()
        if now - before < cores * window_s:
            return
        before = now


async def idle(system, clients, n: int, seconds: float) -> dict:
    """What ``n`` connected members cost while nobody says anything: server and client
    CPU over ``seconds``. Every server here pings a socket that has been silent for 20 s
    (daphne's and websockets' default), so 40 s hold two pings per socket."""
    cpu0, ccpu0, redis0, t0 = system.cpu(), clients_cpu(clients), system.redis_cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    dt = time.monotonic() - t0
    server_cores = (system.cpu() - cpu0) / dt
    thousands = max(n, 1) / 1000
    return {
        "n": n,
        "seconds": dt,
        "server_cores": server_cores,
        "server_ms_per_s_per_1000": server_cores * 1000 / thousands,
        "client_ms_per_s_per_1000": (clients_cpu(clients) - ccpu0) / dt * 1000 / thousands,
        "redis_ms_per_s": (system.redis_cpu() - redis0) / dt * 1000 if system.uses_redis else None,
    }


def _redis_mem(system) -> int:
    if not system.uses_redis:
        return 0
    from bench.systems import redis_used_memory

    return redis_used_memory()


def _ms(seconds):
    return None if seconds is None else seconds * 1000


async def fanout(system, clients, n: int, messages: int, budget_s: float, wait_s: float, pad: str = "") -> dict:
    """One member sends ``messages`` messages; each goes 0.1 s after every receiver got
    the previous one (or after ``wait_s``); no new message after ``budget_s``."""
    for c in clients:
        await c.ask("fanout")
    expecting = [c for c in clients if c.receivers]
    cpu0, ccpu0, rcpu0 = system.cpu(), clients_cpu(clients), system.redis_cpu()
    start = time.monotonic()
    sent = 0
    complete = 0
    for k in range(messages):
        if time.monotonic() - start > budget_s:
            break
        clients[0].tell("send", k=k, pad=pad)
        await clients[0].proc.stdin.drain()
        sent += 1
        tasks = {asyncio.ensure_future(_next_all(c, k)) for c in expecting}
        _done, pending = await asyncio.wait(tasks, timeout=wait_s)
        for task in pending:
            task.cancel()
        if not pending:
            complete += 1
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - start
    await asyncio.sleep(0.2)
    cpu = system.cpu() - cpu0
    ccpu = clients_cpu(clients) - ccpu0
    rcpu = system.redis_cpu() - rcpu0
    stats = await asyncio.gather(*(c.ask("stats") for c in clients))
    latencies: list[float] = []
    last: dict[int, float] = {}
    delivered = 0
    closed: Counter = Counter()
    for s in stats:
        latencies += s["latencies"]
        delivered += sum(s["counts"].values())
        for k, v in s["last"].items():
            last[int(k)] = max(last.get(int(k), 0.0), v)
        closed.update(s["closed_by_server"])
    lasts = [last.get(k, float("inf")) for k in range(sent)]
    expected = sent * n
    return {
        "messages": sent,
        "complete_messages": complete,
        "delivered": delivered,
        "delivered_pct": 100 * delivered / expected if expected else None,
        "p50_ms": _ms(pct(latencies, 0.5)),
        "p99_ms": _ms(pct(latencies, 0.99)),
        "max_ms": _ms(max(latencies) if latencies else None),
        "last_ms_median": _ms(pct([x for x in lasts], 0.5)),
        "elapsed_s": elapsed,
        "server_cpu_s": cpu,
        "server_cpu_ms_per_msg": cpu * 1000 / sent if sent else None,
        "server_cpu_us_per_delivery": cpu * 1e6 / delivered if delivered else None,
        "client_cpu_us_per_delivery": ccpu * 1e6 / delivered if delivered else None,
        "redis_cpu_ms_per_msg": rcpu * 1000 / sent if sent and system.uses_redis else None,
        "closed_by_server": dict(closed),
    }


async def _next_all(client: Client, k: int) -> None:
    while True:
        event = await client.events.get()
        if event.get("ev") == "all" and event["k"] >= k:
            return


async def profile(system, clients, n: int, out_dir: Path, messages: int = 10, wait_s: float = 20) -> dict:
    """py-spy on the first server process while ``messages`` more messages fan out."""
    target = system.servers[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"profile-{system.key}-{n}.txt"
    spy = subprocess.Popen(
        [PYSPY, "record", "--pid", str(target.pid), "--rate", "250", "--format", "raw",
         "--output", str(raw), "--nonblocking", "--gil", "--duration", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    await asyncio.sleep(1.5)
    result = await fanout(system, clients, n, messages, budget_s=60, wait_s=wait_s)
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
    return {"raw": str(raw), "fanout": result, **summarise_profile(raw)}


def summarise_profile(raw: Path) -> dict:
    """Self time by function, and inclusive time of the frames that tell the story."""
    selfs: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    try:
        text = raw.read_text()
    except OSError:
        return {"total_samples": 0, "self": [], "inclusive": []}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        selfs[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return {
        "total_samples": total,
        "self": [(name, 100 * c / total) for name, c in selfs.most_common(18)] if total else [],
        "inclusive": [(name, 100 * c / total) for name, c in inclusive.most_common(40)] if total else [],
    }


def _short(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    parts = path.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    if "site-packages/" in path:
        short = path.split("site-packages/", 1)[1]
    elif "/work/" in path or str(ROOT) in path:
        short = path.replace(str(ROOT) + "/", "")
    return f"{name} ({short})"


async def room(system, steps: list[int], clients_n: int, messages: int, budget_s: float, wait_s: float,
               profile_dir: Path | None = None, idle_s: float = 0, repeat: dict | None = None, log=print) -> list[dict]:
    """One room grown through ``steps`` members (plus one sender) in one server lifetime:
    at each step the new members connect (CPU and RSS growth per connection of that
    step), then a fan-out to everyone connected so far. The idle measurement, the
    profile and the variants run at the last step."""
    n_max = max(steps)
    if hasattr(system, "demo"):
        system.demo(n_max)
    system.variants = profile_dir is not None
    system.start()
    clients = await start_clients(system.dialect, clients_n)
    out = []
    try:
        sender, receivers = system.room(n_max)
        addrs = sources(n_max)
        for i, target in enumerate(receivers):
            target["l"] = addrs[i % len(addrs)]
        answer = await clients[0].ask("connect", targets=[sender])
        if answer["connected"] != 1:
            raise RuntimeError(f"{system.key}: the sender could not connect: {answer['errors']}")
        system.mark()
        done = 0
        for n in sorted(steps):
            conn = await connect_step(system, clients, receivers[done:n], _times(repeat, n))
            conn["n"] = n
            conn["connected"] = sum(c.receivers for c in clients)
            done = n
            log(f"  {system.key} n={n}: {conn['connected']}/{n} connected ({conn['wall_s']:.1f}s for this step), "
                f"{conn['server_cpu_ms_per_conn']:.2f} ms CPU/conn{_runs(conn)}, {conn['rss_kb_per_conn']:.1f} kB/conn")
            fan = await fanout(system, clients, conn["connected"], messages, budget_s, wait_s)
            log(f"  {system.key} n={n}: {fan['messages']} msgs, {fan['delivered_pct'] or 0:.1f}% delivered, "
                f"{fan['server_cpu_us_per_delivery'] or 0:.1f} µs CPU/delivery, last {fan['last_ms_median'] or 0:.0f} ms")
            row = {"system": system.key, "n": n, "clients": clients_n, "connect": conn, "fanout": fan,
                   "variants": None, "incremental_from": out[-1]["n"] if out else 0, "load": loadavg()}
            out.append(row)
        if idle_s:
            out[-1]["idle"] = await idle(system, clients, out[-1]["connect"]["connected"], idle_s)
            log(f"  {system.key} n={out[-1]['n']}: idle {out[-1]['idle']['server_ms_per_s_per_1000']:.2f} ms "
                "server CPU a second per 1,000 members")
        if profile_dir is not None:
            out[-1]["variants"] = await _variants(system, clients, n_max, profile_dir, budget_s, wait_s, log)
        return _with_server_errors(system, out)
    finally:
        await stop_clients(clients)
        system.stop()
        system.variants = False


async def connections(system, steps: list[int], clients_n: int, repeat: dict | None = None, log=print) -> list[dict]:
    """``room``'s connection steps alone, for a system that broadcasts nothing (F)."""
    system.start()
    clients = await start_clients(system.dialect, clients_n)
    out = []
    try:
        _sender, receivers = system.room(max(steps))
        system.mark()
        done = 0
        for n in sorted(steps):
            conn = await connect_step(system, clients, receivers[done:n], _times(repeat, n))
            conn["n"], conn["connected"], done = n, sum(c.receivers for c in clients), n
            log(f"  {system.key} n={n}: {conn['connected']}/{n} connected, {conn['server_cpu_ms_per_conn']:.2f} ms CPU/conn{_runs(conn)}")
            out.append({"system": system.key, "n": n, "connect": conn})
        return _with_server_errors(system, out)
    finally:
        await stop_clients(clients)
        system.stop()


def _runs(conn: dict) -> str:
    runs = conn.get("server_cpu_ms_per_conn_runs")
    return f" (median of {' / '.join(f'{x:.2f}' for x in runs)})" if runs else ""


def _times(repeat: dict | None, n: int) -> int:
    return dict(repeat["at"]).get(n, 1) if repeat else 1


def _with_server_errors(system, rows: list[dict]) -> list[dict]:
    """Each row gets what the servers logged since ``system.mark()`` (one lifetime)."""
    errors = system.errors()
    for row in rows:
        row["server_errors"] = errors
    return rows


async def _variants(system, clients, n, profile_dir, budget_s, wait_s, log) -> dict:
    """On the same connected sockets (bench/serve.py's signal switches): the fast lane and
    the ASGI path, each with and without gc tuning, and a py-spy profile of both paths."""
    import os

    def flip(sig):
        for pid in system.pids():
            os.kill(pid, sig)

    out = {}
    out["profile_fast_lane"] = await profile(system, clients, n, profile_dir / "fast", wait_s=wait_s)
    flip(signal.SIGUSR1)  # fast lane off: the ASGI path
    await asyncio.sleep(0.5)
    out["asgi"] = await fanout(system, clients, n, 10, budget_s, wait_s)
    out["profile_asgi"] = await profile(system, clients, n, profile_dir / "asgi", wait_s=wait_s)
    flip(signal.SIGUSR2)  # gc tuned
    await asyncio.sleep(1.0)
    out["asgi_gc"] = await fanout(system, clients, n, 10, budget_s, wait_s)
    flip(signal.SIGUSR1)  # fast lane back on, gc still tuned
    await asyncio.sleep(0.5)
    out["fast_gc"] = await fanout(system, clients, n, 10, budget_s, wait_s)
    flip(signal.SIGUSR2)
    for key in ("asgi", "asgi_gc", "fast_gc"):
        f = out[key]
        log(f"  {system.key} n={n} {key}: {f['server_cpu_us_per_delivery'] or 0:.1f} µs CPU/delivery, "
            f"last {f['last_ms_median'] or 0:.0f} ms, {f['delivered_pct'] or 0:.1f} % delivered")
    return out


async def small_rooms(system, rooms: int, members: int, clients_n: int, warm: float, dur: float,
                      drain: float, start_rate: float, max_rate: float, bisections: int, searches: int = 1,
                      log=print) -> dict:
    """100 rooms of 10, everyone sending at one steady rate; the rate doubles until a rung
    fails (p99 ≥ 200 ms, < 99 % delivered, or the clients could not keep 95 % of the
    rate), then is bisected. The whole search runs ``searches`` times on the same sockets
    and the result is the median search's: a single search's best moved by a rung
    between runs of the same code (A 3,364-3,998, P2 37,747-45,227 deliveries/s)."""
    if hasattr(system, "fixture_rooms"):
        system.fixture_rooms(rooms, members)
    system.start()
    clients = await start_clients(system.dialect, clients_n)
    rungs = []
    try:
        targets = system.small_rooms(rooms, members)
        system.mark()
        conn = await connect(system, clients, targets)
        if conn["connected"] < len(targets):
            raise RuntimeError(f"{system.key}: only {conn['connected']}/{len(targets)} connected: {conn['errors']}")

        async def rung(rate: float, search: int) -> dict:
            sends = rate / members
            cpu0, ccpu0, rcpu0 = system.cpu(), clients_cpu(clients), system.redis_cpu()
            t0 = time.monotonic()
            answers = await asyncio.gather(
                *(c.ask("chat", rate=sends / len(clients), warm=warm, dur=dur) for c in clients)
            )
            await asyncio.sleep(drain)
            elapsed = time.monotonic() - t0
            cpu, ccpu, rcpu = system.cpu() - cpu0, clients_cpu(clients) - ccpu0, system.redis_cpu() - rcpu0
            # A rung above capacity leaves a backlog: its late frames are its own deliveries
            # (counted in its latencies), and the next rung starts on a quiet system. With a
            # fixed drain alone, a rung right after 64,000/s measured the backlog (105 %
            # delivered, p99 2.3 s at 45,255/s).
            await clients_quiet(clients)
            stats = await asyncio.gather(*(c.ask("stats") for c in clients))
            latencies = [x for s in stats for x in s["latencies"]]
            delivered = sum(s["counts"].get("0", 0) for s in stats)
            expected = sum(a["sent_in_window"] for a in answers) * members
            offered = sum(a["sent"] for a in answers) * members / (warm + dur)
            p99 = _ms(pct(latencies, 0.99))
            fails = []
            if p99 is None or p99 >= 200:
                fails.append("p99")
            if not expected or delivered < 0.99 * expected:
                fails.append("loss")
            if offered < 0.95 * rate:
                fails.append("clients")
            r = {
                "target": rate, "offered": offered, "delivered_per_s": delivered / dur,
                "delivered_pct": 100 * delivered / expected if expected else None,
                "p50_ms": _ms(pct(latencies, 0.5)), "p99_ms": p99,
                "max_ms": _ms(max(latencies) if latencies else None),
                "server_cores": cpu / elapsed, "client_cores": ccpu / elapsed,
                "redis_cores": rcpu / elapsed if system.uses_redis else None,
                "server_cpu_us_per_delivery": cpu * 1e6 / (offered * (warm + dur)) if offered else None,
                "pass": not fails, "fails": fails, "search": search,
            }
            log(f"  {system.key} rooms (search {search + 1}): {rate:,.0f}/s -> p99 {p99 or 0:.1f} ms, "
                f"{r['delivered_pct'] or 0:.1f} % delivered, {'pass' if r['pass'] else 'FAIL ' + ','.join(fails)}")
            rungs.append(r)
            return r

        async def search(n: int) -> dict:
            rate, best, failing = start_rate, None, None
            while rate <= max_rate:
                r = await rung(rate, n)
                if not r["pass"]:
                    failing = rate
                    break
                best = rate
                rate *= 2
            if failing is not None:
                low = best if best is not None else start_rate / 4
                for _ in range(bisections):
                    mid = math.sqrt(low * failing)
                    if (await rung(mid, n))["pass"]:
                        low = best = mid
                    else:
                        failing = mid
            own = [r for r in rungs if r["search"] == n]
            return {"best": max((r for r in own if r["pass"]), key=lambda r: r["target"], default=None),
                    "lowest_failing": min((r for r in own if not r["pass"]), key=lambda r: r["target"], default=None),
                    "capped": failing is None}

        found = [await search(n) for n in range(searches)]
        median = sorted(found, key=lambda f: f["best"]["target"] if f["best"] else 0)[(len(found) - 1) // 2]
        return {"system": system.key, "connect": conn, "rungs": rungs, **median, "bisections": bisections,
                "searches": [f["best"]["delivered_per_s"] if f["best"] else None for f in found],
                "server_errors": system.errors(), "load": loadavg()}
    finally:
        await stop_clients(clients)
        system.stop()


async def clients_quiet(clients, settle: float = 0.5, limit: float = 60.0) -> None:
    """Returns once no client has received a chat frame for ``settle`` seconds (or after
    ``limit``): the clients' side of ``quiet``, for deliveries still on their way."""
    end, last = time.monotonic() + limit, None
    while time.monotonic() < end:
        seen = sum(a["seen"] for a in await asyncio.gather(*(c.ask("seen") for c in clients)))
        if seen == last:
            return
        last = seen
        await asyncio.sleep(settle)


async def big_room(system_factory, target: int, budget_s: float, min_free_mb: int, idle_s: float = 0,
                   log=print) -> dict:
    """How far one room grows toward ``target`` on this machine: as many daphne processes
    as the per-process file limit needs, clients connecting as fast as they can until all
    are in, the time budget is spent, or free memory falls under ``min_free_mb``."""
    import resource

    fd_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    per_process = fd_limit - 1_000
    processes = max(2, math.ceil(target / per_process))
    system = system_factory(processes)
    t_demo = time.monotonic()
    system.demo(target)
    demo_s = time.monotonic() - t_demo
    log(f"  big room: demo --consumers {target} --sessions took {demo_s:.0f}s; {processes} daphne")
    system.start()
    clients_n = max(4, math.ceil(target / per_process) + 1)
    clients = await start_clients(system.dialect, clients_n)
    reason = "all connected"
    try:
        sender, receivers = system.room(target)
        await clients[0].ask("connect", targets=[sender])
        system.mark()
        addrs = sources(target)
        for i, t in enumerate(receivers):
            t["l"] = addrs[i % len(addrs)]
        rss0 = system.rss()
        cpu0 = system.cpu()
        start = time.monotonic()
        connected = 0
        errors: Counter = Counter()
        batch = 500  # per client process: the time budget is checked between chunks
        i = 0
        while i < len(receivers):
            if time.monotonic() - start > budget_s:
                reason = f"time budget ({budget_s:.0f} s) spent"
                break
            if mem_available_mb() < min_free_mb:
                reason = f"memory guard: MemAvailable < {min_free_mb} MB"
                break
            chunk = receivers[i : i + batch * len(clients)]
            parts = [chunk[j :: len(clients)] for j in range(len(clients))]
            answers = await asyncio.gather(
                *(c.ask("connect", targets=p, concurrency=25, timeout=900) for c, p in zip(clients, parts, strict=True) if p)
            )
            for c, a in zip((c for c, p in zip(clients, parts, strict=True) if p), answers, strict=False):
                c.receivers += a["connected"]
            for a in answers:
                connected += a["connected"]
                errors.update(a["errors"])
            i += len(chunk)
            log(f"  big room: {connected:,} connected after {time.monotonic() - start:.0f}s "
                f"(MemAvailable {mem_available_mb():,} MB)")
            if errors and sum(errors.values()) > 0.05 * i:
                reason = f"connection errors: {dict(errors)}"
                break
        wall = time.monotonic() - start
        await asyncio.sleep(1.0)
        rss1, cpu1 = system.rss(), system.cpu()
        quiet = await idle(system, clients, connected, idle_s) if idle_s else None
        fan = await fanout(system, clients, connected, messages=3, budget_s=60, wait_s=60)
        return {
            "target": target, "processes": processes, "demo_s": demo_s, "connected": connected,
            "wall_s": wall, "stopped_by": reason, "errors": dict(errors),
            "rss_kb_per_conn": (rss1 - rss0) / max(connected, 1),
            "server_cpu_ms_per_conn": (cpu1 - cpu0) * 1000 / max(connected, 1),
            "server_rss_mb": rss1 / 1024, "client_rss_mb": sum(c.rss() for c in clients) / 1024,
            "fanout": fan, "idle": quiet, "server_errors": system.errors(), "mem_available_mb": mem_available_mb(),
        }
    finally:
        await stop_clients(clients)
        system.stop()


async def _frame_of(ws, kind: str, timeout: float) -> dict:
    import json

    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if frame.get("type") == kind:
            return frame
        if frame.get("type") == "error":
            raise RuntimeError(f"waiting for {kind}: {frame}")


async def votes(system, n: int, clients_n: int, log=print) -> dict:
    """n consumers connected over the production-shaped Palabre; the company submits an
    offer, the mediator opens a ballot, then every consumer casts one vote as fast as the
    clients can send: exactly ceil(75 % × eligible) accept (sent last) and the rest refuse,
    so the seal falls on the last accepting vote. Checked: one seal, seen once by every
    member; receipts = accept + refuse in the seal; ``manage.py verify_seal`` says OK."""
    import json

    from websockets.asyncio.client import connect as ws_connect

    system.demo(n)
    system.start()
    clients = await start_clients(system.dialect, clients_n)
    try:
        data = system.demo_data
        by_role = {u["role"]: u for u in data["users"] if u["role"] != "consumer"}
        _sender, receivers = system.room(n)
        conn = await connect(system, clients, receivers)
        system.mark()
        log(f"  votes: {conn['connected']:,}/{n:,} consumers connected")

        async def admin(role):
            t = system._target(0, data["room_id"], by_role[role]["session"])
            ws = await ws_connect(t["u"], origin=t["o"], additional_headers=[("Cookie", f"sessionid={t['c']}")],
                                  compression=None, ping_interval=None, proxy=None, max_size=2**22)
            await _frame_of(ws, "welcome", 30)
            return ws

        company, mediator = await admin("company"), await admin("mediator")
        await company.send(json.dumps({"type": "offer.submit", "title": "Remboursement", "terms": "84,50 € chacun",
                                       "amount_cents": 8450, "ref": "o"}))
        offer = (await _frame_of(mediator, "offer.submitted", 30))["offer"]
        await mediator.send(json.dumps({"type": "ballot.open", "offer_id": offer["id"], "duration_s": 1800, "ref": "b"}))
        ballot = (await _frame_of(mediator, "ballot.opened", 30))["ballot"]
        eligible = int(ballot["eligible"])
        needed = (3 * eligible + 3) // 4  # accept >= ceil(0.75 x eligible), in integers
        shares = [c.receivers for c in clients]
        accepts, left = [], needed
        for i, share in enumerate(shares):
            a = left if i == len(shares) - 1 else min(share, round(needed * share / max(sum(shares), 1)))
            accepts.append(a)
            left -= a
        cpu0, ccpu0 = system.cpu(), clients_cpu(clients)
        answers = await asyncio.gather(*(c.ask("vote", ballot_id=ballot["id"], accept=a, timeout=600)
                                         for c, a in zip(clients, accepts, strict=True)))
        cpu, ccpu = system.cpu() - cpu0, clients_cpu(clients) - ccpu0
        try:
            seal_seen = await _frame_of(mediator, "ballot.sealed", 30)
        except Exception as exc:  # noqa: BLE001
            seal_seen = {"error": str(exc)}
        for ws in (company, mediator):
            ws.transport.abort()
        counts: Counter = Counter()
        sealed: Counter = Counter()
        for a in answers:
            counts.update(a["counts"])
            sealed.update(a["sealed"])
        start = min(a["start"] for a in answers)
        end = max(a["last_answer"] for a in answers)
        verify = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "verify_seal", str(ballot["id"])],
            env=system.env(), cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        receipts = counts.get("receipt", 0)
        return {
            "n": n, "connected": conn["connected"], "eligible": eligible, "needed": needed,
            "receipts": receipts, "errors": {k: v for k, v in counts.items() if k != "receipt"},
            "votes_per_s": receipts / (end - start) if end > start else None, "wall_s": end - start,
            "server_cpu_ms_per_vote": cpu * 1000 / max(receipts, 1), "client_cpu_ms_per_vote": ccpu * 1000 / max(receipts, 1),
            "seal": {k: seal_seen.get(k) for k in ("seq", "outcome", "accept", "refuse", "eligible", "error")},
            "distinct_seals_seen": len(sealed), "seal_frames_seen": sum(sealed.values()),
            "exact": receipts == (seal_seen.get("accept") or 0) + (seal_seen.get("refuse") or 0),
            "verify_seal": (verify.stdout.strip() or verify.stderr.strip())[-300:], "verify_rc": verify.returncode,
            "server_errors": system.errors(),
        }
    finally:
        await stop_clients(clients)
        system.stop()
