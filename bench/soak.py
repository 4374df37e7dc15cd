"""Soak: recorders docking and undocking with random faults against a running daemon.

Recorders (written with simulators/bodycam.py) record new clips while away, then dock either
as a plain directory or through faultfs with a random fault (EIO, early EOF, a file changing
while read, an unplug mid-file, USB 2.0 speed), and leave again, cleanly or yanked. The daemon
ingests, archives to an off-station store and releases through the wipe gate throughout. At
the end every recorder docks once more, the daemon settles, and the fault harness's
invariants are checked. Prints clips ingested, faults injected, invariant violations (must be
0) and the daemon's RSS over time (must stay flat: growth after warm-up under 10 %).

    .venv/bin/python bench/soak.py [--seconds 600] [--recorders 4] [--seed N] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from faults.harness import Recorder, agent_cmd, check_invariants, sha256_of  # noqa: E402
from simulators.bodycam import BodycamSpec, write_volume  # noqa: E402
from simulators.faultmount import FaultMount  # noqa: E402

FAULTS = ("none", "throttle", "eio", "eof", "change", "unplug")
RSS_LIMIT = 0.10


@dataclass
class SoakOptions:
    seconds: float = 600.0
    recorders: int = 4
    seed: int | None = None
    dir: str | None = None
    interval: float = 1.0  # mean pause between dock events
    fault_rate: float = 0.6  # share of docks through faultfs with a random fault
    warmup: float | None = None  # default: a third of the run, at most 60 s
    fsname: str = "evagent-soak"
    settle_timeout: float = 120.0


@dataclass
class SoakResult:
    seed: int
    seconds: float
    docks: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    clips_recorded: int = 0
    clips_ingested: int = 0
    released: int = 0
    violations: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s since start, KiB)
    warmup: float = 0.0

    @property
    def rss_growth(self) -> float:
        """Median RSS of the last fifth of the run against the first fifth after warm-up."""
        after = [kib for t, kib in self.rss if t >= self.warmup]
        if len(after) < 5:
            return 0.0
        k = max(1, len(after) // 5)
        first, last = statistics.median(after[:k]), statistics.median(after[-k:])
        return (last - first) / first

    @property
    def ok(self) -> bool:
        return not self.violations and self.rss_growth < RSS_LIMIT

    def report(self) -> str:
        every = max(1, len(self.rss) // 24)
        trace = " ".join(f"{kib / 1024:.0f}" for _, kib in self.rss[::every])
        lines = [
            f"soak: {self.seconds:.0f} s, seed {self.seed} (replay: --seed {self.seed})",
            f"  docks: {sum(self.docks.values())} {self.docks}",
            f"  clips recorded {self.clips_recorded}, ingested {self.clips_ingested}, "
            f"released through the wipe gate {self.released}",
            f"  faults injected: {sum(self.faults.values())} {self.faults}",
            f"  invariant violations: {len(self.violations)}",
            *(f"    {v}" for v in self.violations[:20]),
            f"  daemon RSS MiB over time: {trace}",
            f"  RSS growth after {self.warmup:.0f} s warm-up: {self.rss_growth * 100:+.1f} % "
            f"(limit {RSS_LIMIT * 100:.0f} %)",
            f"  result: {'OK' if self.ok else 'FAILED'}",
        ]
        return "\n".join(lines)


class Dock:
    """One recorder: its storage lives in a pocket dir and is docked plain or via faultfs."""

    def __init__(self, serial: str, base: Path, mount_root: Path, opts: SoakOptions) -> None:
        self.serial, self.mount_root, self.opts = serial, mount_root, opts
        self.pocket = base / "pocket" / serial
        self.ctl = base / "ctl"
        self.start = datetime(2026, 9, 21, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        self.rec: Recorder | None = None
        self.where = "pocket"
        self.mount: FaultMount | None = None

    @property
    def point(self) -> Path:
        return self.mount_root / self.serial

    def record(self, n: int, stage: Path) -> int:
        """Record n new clips into the recorder's storage (only while it is not docked)."""
        spec = BodycamSpec(serial=self.serial, officer="100001", clips=n, seconds=1.0,
                           start=self.start, fps=5)  # fmt: skip
        self.start += timedelta(minutes=5)
        out = stage / f"{self.serial}-{time.monotonic_ns()}"
        clips = write_volume(out, spec)
        if self.rec is None:
            shutil.move(str(out), str(self.pocket))
            self.rec = Recorder(self.pocket, self.serial)
            self.rec.adopt()
            return len(clips)
        for clip in clips:
            rel = clip.relative_to(out)
            dest = self.pocket / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            clip.rename(dest)
            self.rec.manifest[str(rel).encode()] = sha256_of(dest)
        shutil.rmtree(out)
        return len(clips)

    def dock(self, rng: random.Random, faulty: bool, counts: dict[str, int]) -> str:
        assert self.rec is not None
        if not faulty:
            self.pocket.rename(self.point)
            self.rec.volume, self.where = self.point, "plain"
            return "plain"
        kind = rng.choice(FAULTS)
        spec = self._fault(kind, rng)
        self.mount = FaultMount(self.pocket, self.point, workdir=self.ctl, allow_erase=True,
                                fsname=self.opts.fsname)  # fmt: skip
        self.mount.start(**spec)
        self.where = "faultfs"
        if kind == "throttle":
            counts["throttle"] = counts.get("throttle", 0) + 1
        return f"faultfs:{kind}"

    def _fault(self, kind: str, rng: random.Random) -> dict[str, object]:
        clips = sorted(p for p in self.pocket.rglob("*.MP4"))
        if kind == "none" or not clips:
            return {}
        if kind == "throttle":
            return {"throttle_bps": 30e6}
        clip = rng.choice(clips)
        rule = {"path": str(clip.relative_to(self.pocket)),
                "at": rng.randrange(max(1, clip.stat().st_size)), "times": 1}  # fmt: skip
        return {kind: [rule]}

    def undock(self, yank: bool, counts: dict[str, int]) -> None:
        assert self.rec is not None
        if self.where == "plain":
            self.point.rename(self.pocket)
        elif self.mount is not None:
            if yank:
                self.mount.unplug()
                counts["yank"] = counts.get("yank", 0) + 1
            self.mount.stop()
            for ev in self.mount.events():
                mid_file = ev["fault"] != "unplug" or ev.get("at") is not None  # not the yank
                if ev["fault"] in ("eio", "eof", "change", "unplug") and mid_file:
                    counts[ev["fault"]] = counts.get(ev["fault"], 0) + 1
                if ev["fault"] == "change":  # what the recorder holds from now on
                    self.rec.changed(ev["path"].encode(), ev["sha256"])
            self.mount = None
            self.point.rmdir()
        self.rec.volume, self.where = self.pocket, "pocket"


def _station(base: Path) -> Path:
    cfg = base / "agent.toml"
    cfg.write_text(
        f'[station]\nid = "soak"\ndata_dir = "{base / "data"}"\n'
        f'[detect]\nmount_roots = ["{base / "media"}"]\nsettle_seconds = 0.3\n'
        "poll_seconds = 0.2\nrescan_seconds = 2\n"
        '[ingest]\nspool_reserve_bytes = 0\nretry_seconds = 0.5\nrelease_after = "archived"\n'
        "chunk_bytes = 262144\n[archive]\noff_station = true\n",
        encoding="utf-8",
    )
    return cfg


def _sample_rss(pid: int, out: list[tuple[float, int]], stop: threading.Event) -> None:
    t0 = time.monotonic()
    while not stop.wait(1.0):
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                kib = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return
        out.append((time.monotonic() - t0, kib))


def run(opts: SoakOptions, log=print) -> SoakResult:  # type: ignore[no-untyped-def]
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    res = SoakResult(seed, opts.seconds)
    res.warmup = opts.warmup if opts.warmup is not None else min(60.0, opts.seconds / 3)
    base = Path(tempfile.mkdtemp(prefix="evagent-soak-", dir=opts.dir))
    for sub in ("media", "pocket", "ctl", "stage"):
        (base / sub).mkdir()
    cfg = _station(base)
    docks = [Dock(f"SOAK{i:03d}", base, base / "media", opts) for i in range(opts.recorders)]
    for d in docks:
        res.clips_recorded += d.record(2, base / "stage")
    with open(base / "daemon.log", "wb") as daemon_log:
        daemon = subprocess.Popen(
            agent_cmd(cfg, "--log-level", "warning", "run"), cwd=ROOT, stderr=daemon_log
        )
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(daemon.pid, res.rss, stop), daemon=True)
    sampler.start()
    try:
        _churn(opts, rng, docks, res, base)
        for d in docks:  # the end of the shift: everyone docks, cleanly
            if d.where == "faultfs":
                d.undock(False, res.faults)
            if d.where == "pocket":
                d.dock(rng, False, res.faults)
        _settle(cfg, docks, opts.settle_timeout, res)
    finally:
        stop.set()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        for d in docks:
            if d.mount is not None:
                d.mount.stop()
    recs = [d.rec for d in docks if d.rec is not None]
    res.violations += check_invariants(cfg, recs, final=True, release_after="archived")
    if daemon.returncode != 0:
        res.violations.append(f"daemon exited {daemon.returncode}; see {base / 'daemon.log'}")
    _count(cfg, res)
    if res.ok:
        shutil.rmtree(base, ignore_errors=True)
    else:
        log(f"soak: kept {base} for inspection")
    return res


def _churn(
    opts: SoakOptions, rng: random.Random, docks: list[Dock], res: SoakResult, base: Path
) -> None:
    end = time.monotonic() + opts.seconds
    while time.monotonic() < end:
        d = rng.choice(docks)
        if d.where == "pocket":
            if rng.random() < 0.7:
                res.clips_recorded += d.record(rng.randint(1, 2), base / "stage")
            how = d.dock(rng, rng.random() < opts.fault_rate, res.faults)
            res.docks[how] = res.docks.get(how, 0) + 1
        else:
            d.undock(rng.random() < 0.5, res.faults)
        time.sleep(min(max(0.0, end - time.monotonic()), opts.interval * rng.uniform(0.5, 1.5)))


def _pending(cfg: Path, docks: list[Dock]) -> int:
    """Recordings not yet released, but for earlier contents of a file the recorder rewrote
    after it was hashed: those stay archived (the gate sees the source changed)."""
    import sqlite3

    current = {(d.serial, rel): sha for d in docks if d.rec for rel, sha in d.rec.manifest.items()}
    conn = sqlite3.connect(cfg.parent / "data" / "ledger.sqlite3", timeout=60)
    try:
        rows = conn.execute(
            "SELECT d.serial, r.source_path_raw, r.sha256 FROM recordings r"
            " JOIN devices d ON d.id = r.device_id WHERE r.state != 'released'"
        ).fetchall()
    finally:
        conn.close()
    return sum(sha is None or current.get((serial, bytes(raw))) == sha for serial, raw, sha in rows)


def _settle(cfg: Path, docks: list[Dock], timeout: float, res: SoakResult) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(3.0)  # let the daemon see the final docks (settle + a rescan)
    while time.monotonic() < deadline and _pending(cfg, docks):
        time.sleep(0.5)
    if n := _pending(cfg, docks):
        res.violations.append(f"{n} recordings not released {timeout:.0f} s after the last dock")


def _count(cfg: Path, res: SoakResult) -> None:
    import sqlite3

    conn = sqlite3.connect(cfg.parent / "data" / "ledger.sqlite3", timeout=60)
    try:
        res.clips_ingested = conn.execute(
            "SELECT COUNT(*) FROM recordings WHERE sha256 IS NOT NULL"
        ).fetchone()[0]
        res.released = conn.execute(
            "SELECT COUNT(*) FROM recordings WHERE state = 'released'"
        ).fetchone()[0]
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=600.0, help="churn time (default 10 min)")
    p.add_argument("--recorders", type=int, default=4)
    p.add_argument("--seed", type=int, default=None, help="replay a run")
    p.add_argument("--dir", default=None, help="where to put the station (default: $TMPDIR)")
    p.add_argument("--fault-rate", type=float, default=0.6, help="share of faulty docks")
    p.add_argument("--warmup", type=float, default=None, help="RSS warm-up seconds")
    a = p.parse_args(argv)
    res = run(SoakOptions(seconds=a.seconds, recorders=a.recorders, seed=a.seed, dir=a.dir,
                          fault_rate=a.fault_rate, warmup=a.warmup))  # fmt: skip
    print(res.report())
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
