"""Years of history on one station: what commands and the idle daemon cost at N recordings.

    python -m bench.scale [--n 1000000] [--recorders 500] [--idle-seconds 60]

Builds (or takes from the cache, keyed by N, recorders and schema version) a ledger of N
recordings through the project's own write functions (bench/scale_ledger.py), then prints
the idle daemon's CPU % of one core and RSS over `--idle-seconds`, then, with that daemon still
running as on a station in service, the wall time and peak RSS of `status`, `status --json`,
`report --json` for a month and for a year, and the ledger's bytes per recording. Targets
(issue 13): status < 1 s, a month's report < 2 s, a year's < 10 s, idle daemon < 2 % CPU and
< 150 MB RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from bench.common import agent_cmd, station_config, timed
from bench.scale_ledger import cached_ledger, ledger_bytes_per_recording

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evidence-agent-bench"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def running_daemon(
    config: Path, warmup: float, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`run` with nothing docked, warmed up; stopped on leaving."""
    proc = subprocess.Popen(
        agent_cmd(config, "run"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise SystemExit(f"daemon exited {proc.returncode} during warm-up:\n{err}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def idle_figures(proc: subprocess.Popen[bytes], seconds: float) -> tuple[float, int, int]:
    """(CPU % of one core, peak RSS KiB, RSS KiB at the end) of the daemon over `seconds`."""
    peak, t0, c0 = 0, time.monotonic(), _cpu_ticks(proc.pid)
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        peak = max(peak, _rss_kib(proc.pid))
    cpu = (_cpu_ticks(proc.pid) - c0) / TICK / (time.monotonic() - t0) * 100
    return cpu, peak, _rss_kib(proc.pid)


def mark_roots(config: Path) -> None:
    """What a station in service has done before: its roots carry their markers (a copied
    ledger with copies under a root without one is refused, agent.ledger.paths), and its
    custody history was shipped to the archive segment by segment as it grew; without that the
    first minutes of `run` would ship a year of custody events, which is not idling."""
    from agent.config import loader
    from agent.ledger import paths
    from agent.ledger.db import Ledger

    cfg = loader.load(config, environ={})
    for name, root in paths.roots(cfg).items():
        if paths.read_marker(root) is None:
            paths.write_marker(root, cfg.station.id, name)
    ledger = Ledger(cfg.ledger_path, paths.roots(cfg), cfg.station.id)
    with ledger.tx() as conn:
        head = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM custody").fetchone()[0]
        ledger.set_kv(conn, "archive.segment_shipped", str(head))
    ledger.close()


def _line(what: str, seconds: float, rss_kib: int, target: float | None) -> str:
    mark = "" if target is None else (" ok" if seconds < target else f" OVER {target:g} s")
    return f"  {what:<28} {seconds:8.2f} s  {rss_kib / 1024:7.0f} MB RSS{mark}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="recordings (default 1,000,000)")
    p.add_argument("--recorders", type=int, default=500)
    p.add_argument("--idle-seconds", type=float, default=60.0)
    p.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring idle")
    p.add_argument("--cache-dir", type=Path, default=CACHE)
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ea-scale-") as tmp:
        base = Path(tmp)
        data, mounts = base / "data", base / "media"
        mounts.mkdir(parents=True)
        t0 = time.monotonic()
        ledger = cached_ledger(data / "ledger.sqlite3", args.n, args.recorders, args.cache_dir)
        print(f"scale: {args.n} recordings, {args.recorders} recorders")
        print(f"  ledger ready in {time.monotonic() - t0:.1f} s (cache {args.cache_dir})")
        config = station_config(base / "agent.toml", data, mounts)
        mark_roots(config)
        today = date.today()
        month = (today - timedelta(days=30)).isoformat(), today.isoformat()
        year = (today - timedelta(days=365)).isoformat(), today.isoformat()
        report = ["report", "--json", "--from"]
        cases = [
            ("status", ["status"], 1.0),
            ("status --json", ["status", "--json"], 1.0),
            ("report --json (month)", [*report, month[0], "--to", month[1]], 2.0),
            ("report --json (year)", [*report, year[0], "--to", year[1]], 10.0),
        ]
        # As installed: pip and dh-virtualenv compile the bytecode at install time, so a
        # station never compiles the agent per command (a shell that sets
        # PYTHONDONTWRITEBYTECODE would otherwise add ~0.2 s to every command timed here).
        installed = {
            "PYTHONDONTWRITEBYTECODE": "",
            "PYTHONPYCACHEPREFIX": str(args.cache_dir / "pycache"),
        }
        # First open: migrations, page cache, bytecode.
        timed(agent_cmd(config, "status", "--json"), env=installed)
        # A station in service: its daemon runs (idle, nothing docked) while operators ask.
        with running_daemon(config, args.warmup, installed) as daemon:
            cpu, peak, end = idle_figures(daemon, args.idle_seconds)
            ok = "ok" if cpu < 2.0 and peak < 150 * 1024 else "OVER 2 % / 150 MB"
            print(
                f"  idle daemon over {args.idle_seconds:.0f} s: {cpu:.2f} % of a core, "
                f"RSS peak {peak / 1024:.0f} MB, end {end / 1024:.0f} MB  {ok}"
            )
            for what, cmd, target in cases:
                seconds, rss = timed(agent_cmd(config, *cmd), env=installed)
                print(_line(what, seconds, rss, target))
        print(f"  ledger: {ledger_bytes_per_recording(ledger, args.n):.0f} bytes per recording")
    return 0


if __name__ == "__main__":
    sys.exit(main())
