"""The dock console with 25 docked recorders: page and live-update latency.

    python -m bench.console [--recorders 25] [--pages 50] [--updates 20]

Builds a station whose ledger holds N docked recorders with recordings in every state (device
and ledger state, not N real ingests), serves the daemon's gate in this process (the daemon's
own ApiServer on a real Unix socket) and runs `evidence-agent console` as a subprocess. Prints
the time to load the bays page (median, p95) and, with a server-sent-events stream open, the
time from a recording's state change committed in the ledger to the event that carries it.
Target (issue 17): both under 200 ms. Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import agent_cmd, station_config
from drivers.base import DeviceIdentity

STATES = ("discovered", "copying", "spooled", "spooled", "archived", "failed")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(base: Path, recorders: int, port: int) -> Path:
    register = base / "operators.csv"
    register.write_text(
        "officer_id,login,name,roles,cert_no,active\nA001,root,管理员,admin,JZ-A001,1\n",
        encoding="utf-8",
    )
    extra = (
        f'[api]\nsocket = "{base}/api.sock"\n[operators]\nfile = "{register}"\n'
        f'[console]\nlogin = "root"\nport = {port}\n'
    )
    (base / "media").mkdir()
    return station_config(base / "agent.toml", base / "data", base / "media", extra)


def fill(ctx: object, recorders: int) -> list[str]:
    """N docked recorders, 6 recordings each; returns the ids still `discovered`."""
    from agent.core import clock
    from agent.ledger import devices
    from agent.ledger import recordings as rec
    from agent.recorders.volume import SourceFile

    waiting = []
    with ctx.ledger.tx() as conn:  # type: ignore[attr-defined]
        for i in range(recorders):
            ident = DeviceIdentity(vendor="bench", serial=f"BC{i:04d}", source="devinfo",
                                   officer_id=f"{310000 + i}", unit_id="unit-01")  # fmt: skip
            dev = devices.dock(
                conn, ident, registered=True, inventory_status="in_service", quarantine=False,
                volume=f"/media/BC{i:04d}",
            ).device_id  # fmt: skip
            for j, state in enumerate(STATES):
                now = clock.now()
                f = SourceFile(f"DCIM/{j:04d}.MP4".encode(), 50_000_000, int(now.timestamp()))
                rid, _ = rec.discover_file(conn, dev, f, {"start": clock.iso(now)})
                if state == "discovered":
                    waiting.append(rid)
                else:
                    rec.transition(
                        conn, rid, state, fields={"reason": "bench" if state == "failed" else None}
                    )
    return waiting


def _pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def page_latency(port: int, n: int) -> list[float]:
    out = []
    for i in range(n + 3):  # the first three warm the console up and are not counted
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        body = conn.getresponse().read()
        if i >= 3:
            out.append((time.perf_counter() - t0) * 1000)
        conn.close()
        assert b"BC0000" in body
    return out


def update_latency(ctx: object, port: int, waiting: list[str], n: int) -> list[float]:
    from agent.ledger import recordings as rec

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/events")
    resp = conn.getresponse()
    got: list[tuple[float, int]] = []  # (arrival, recordings copied over all bays)
    seen = threading.Event()

    def reader() -> None:
        while True:
            try:
                line = resp.readline()
            except (OSError, AttributeError, ValueError):
                return  # the stream was closed at the end
            if not line:
                return
            if line.startswith(b"data:"):
                snap = json.loads(line[5:])
                got.append((time.perf_counter(), sum(b["copied"] for b in snap["bays"])))
                seen.set()

    threading.Thread(target=reader, daemon=True).start()
    seen.wait(10)  # the first event: the state as it is
    out, rnd = [], random.Random(17)
    for rid in waiting[:n]:
        time.sleep(rnd.uniform(0.3, 0.8))  # land anywhere in the console's poll interval
        before = got[-1][1]
        with ctx.ledger.tx() as c:  # type: ignore[attr-defined]
            rec.transition(c, rid, "spooled")
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 10 and got[-1][1] == before:
            time.sleep(0.002)
        if got[-1][1] != before:
            out.append((got[-1][0] - t0) * 1000)
    conn.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recorders", type=int, default=25)
    p.add_argument("--pages", type=int, default=50)
    p.add_argument("--updates", type=int, default=20)
    args = p.parse_args(argv)

    from agent.config import loader
    from agent.daemon.api import ApiServer
    from agent.station.context import Context

    with tempfile.TemporaryDirectory(prefix="eacb-") as tmp:
        base, port = Path(tmp), _port()
        cfg_path = build(base, args.recorders, port)
        ctx = Context(loader.load(cfg_path, environ={}))
        waiting = fill(ctx, args.recorders)
        stop = threading.Event()
        ApiServer(ctx, stop).start()
        console = subprocess.Popen(agent_cmd(cfg_path, "console"), stderr=subprocess.PIPE)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            pages = page_latency(port, args.pages)
            updates = update_latency(ctx, port, waiting, args.updates)
        finally:
            console.terminate()
            console.wait(timeout=20)
            stop.set()
    result = {
        "recorders": args.recorders,
        "page_ms": {"median": statistics.median(pages), "p95": _pct(pages, 0.95)},
        "update_ms": {"median": statistics.median(updates), "p95": _pct(updates, 0.95)},
        "target_ms": 200,
    }
    print(f"console, {args.recorders} docked recorders (target < 200 ms)")
    for what, key in (("bays page", "page_ms"), ("live update", "update_ms")):
        r = result[key]
        print(f"  {what:12} median {r['median']:6.1f} ms   p95 {r['p95']:6.1f} ms")  # type: ignore[index]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
