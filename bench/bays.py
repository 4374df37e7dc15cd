"""Eight bays at once: the daemon's aggregate ingest rate against `cp` + `sha256sum` on the
same throttled mounts.

    python -m bench.bays [--recorders 8] [--clips 2] [--mib 128] [--bps 35000000] [--dir /var/tmp]

Each recorder is a volume served through the fault filesystem (simulators/faultfs.py) with
its reads throttled to USB 2.0 speed (`throttle_bps`, ~35 MB/s per recorder). The peer is
`cp` + `sha256sum` of every volume, all volumes at once: the ceiling these mounts give. The
agent is `evidence-agent run` with `ingest.max_parallel = recorders` and the archive paused,
timed from the first `ingest.started` to the last `ingest.completed` (its own events), so
detection and settling are not counted. Prints both rates, the agent's as a fraction of the
ceiling (target >= 0.95, issue 13), and the daemon's CPU seconds per GB ingested.
Needs root and FUSE (fuse3, mfusepy); the page cache is dropped before each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import agent_cmd, drop_caches, station_config  # noqa: E402
from simulators.faultmount import FaultMount  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    files: int
    total_bytes: int
    peer_seconds: float
    agent_seconds: float
    agent_cpu_seconds: float

    @property
    def fraction(self) -> float:
        return self.peer_seconds / self.agent_seconds

    def report(self) -> str:
        mb = self.total_bytes / 1e6
        gb = self.total_bytes / 1e9
        return "\n".join(
            [
                f"bays benchmark: {self.files} files, {mb:.0f} MB",
                f"  peer (cp + sha256sum, all at once) {self.peer_seconds:7.2f} s"
                f"  {mb / self.peer_seconds:7.1f} MB/s  (the ceiling)",
                f"  agent (run, max_parallel)         {self.agent_seconds:7.2f} s"
                f"  {mb / self.agent_seconds:7.1f} MB/s",
                f"  agent / ceiling = {self.fraction:.2f}  (target >= 0.95)",
                f"  agent CPU {self.agent_cpu_seconds:.2f} s = "
                f"{self.agent_cpu_seconds / gb:.2f} CPU s per GB",
            ]
        )


def make_volumes(base: Path, recorders: int, clips: int, mib: int) -> list[Path]:
    block = os.urandom(1 << 20)
    vols = []
    for r in range(recorders):
        serial = f"BAY{r:03d}"
        vol = base / "backing" / serial
        day = vol / "DCIM" / "20260921"
        day.mkdir(parents=True)
        (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n", encoding="utf-8")
        for i in range(clips):
            path = day / f"{serial}_1000{r:02d}_2026092108{i:02d}00_{i:04d}.MP4"
            with open(path, "wb") as fh:
                for j in range(mib):
                    # distinct content per MiB and file: nothing can dedupe or compress it away
                    fh.write(r.to_bytes(2, "little") + j.to_bytes(4, "little") + block[6:])
            os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
        vols.append(vol)
    return vols


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def peer(mounts: list[Path], base: Path) -> float:
    """Wall seconds of `cp` then `sha256sum` of every mount, all mounts at once."""
    procs = []
    drop_caches()
    t0 = time.perf_counter()
    for m in mounts:
        dst = base / "peer" / m.name
        dst.mkdir(parents=True)
        script = f"cp {m}/DCIM/*/*.MP4 {dst}/ && sha256sum {dst}/* >/dev/null"
        procs.append(subprocess.Popen(script, shell=True, stderr=subprocess.PIPE))
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"peer failed: {p.stderr.read().decode() if p.stderr else ''}")
    elapsed = time.perf_counter() - t0
    shutil.rmtree(base / "peer")
    return elapsed


def _progress(ledger: Path) -> tuple[int, int, list[str], list[str]]:
    """(recordings spooled, failed, ingest.started times, ingest.completed times)."""
    if not ledger.exists():
        return 0, 0, [], []
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        done = conn.execute("SELECT COUNT(*) FROM recordings WHERE state = 'spooled'").fetchone()
        failed = conn.execute("SELECT COUNT(*) FROM recordings WHERE state = 'failed'").fetchone()
        rows = conn.execute(
            "SELECT type, at FROM outbox WHERE type IN ('ingest.started', 'ingest.completed')"
        ).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return 0, 0, [], []
    finally:
        conn.close()
    started = [at for t, at in rows if t == "ingest.started"]
    completed = [at for t, at in rows if t == "ingest.completed"]
    return done[0], failed[0], started, completed


def agent(mount_root: Path, base: Path, files: int, recorders: int, timeout: float):
    """(seconds from the first ingest.started to the last ingest.completed, CPU seconds of
    the daemon over the same stretch) of `run` ingesting every mount."""
    data = base / "data"
    extra = (
        f'max_parallel = {recorders}\nrelease_after = "never"\n'
        "[archive]\nbandwidth_bytes_per_s = 0\n"  # paused: only ingest is measured
    )
    cfg = station_config(base / "agent.toml", data, mount_root, extra)
    drop_caches()
    proc = subprocess.Popen(
        agent_cmd(cfg, "run"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    cpu0: int | None = None
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"daemon exited {proc.returncode}:\n{err}")
            done, failed, started, completed = _progress(data / "ledger.sqlite3")
            if started and cpu0 is None:
                cpu0 = _cpu_ticks(proc.pid)
            if failed:
                raise SystemExit(f"{failed} recordings failed to ingest (see {data})")
            if done >= files and len(completed) >= files:
                cpu = (_cpu_ticks(proc.pid) - (cpu0 or 0)) / TICK
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {files} ingested after {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    first = min(datetime.fromisoformat(at) for at in started)
    last = max(datetime.fromisoformat(at) for at in completed)
    return (last - first).total_seconds(), cpu


def run(args: argparse.Namespace) -> Result:
    base = Path(tempfile.mkdtemp(prefix="evbench-bays-", dir=args.dir))
    mounts: list[FaultMount] = []
    try:
        vols = make_volumes(base, args.recorders, args.clips, args.mib)
        root = base / "media"
        for vol in vols:
            fm = FaultMount(vol, root / vol.name, workdir=base, fsname=args.fsname)
            mounts.append(fm.start(throttle_bps=args.bps))
        points = [fm.mountpoint for fm in mounts]
        files = args.recorders * args.clips
        total = files * args.mib * (1 << 20)
        peer_s = peer(points, base)
        agent_s, cpu = agent(root, base, files, args.recorders, args.timeout)
        return Result(files, total, peer_s, agent_s, cpu)
    finally:
        for fm in reversed(mounts):
            fm.stop()
        shutil.rmtree(base, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recorders", type=int, default=8, help="recorders docked at once")
    p.add_argument("--clips", type=int, default=2, help="files per recorder")
    p.add_argument("--mib", type=int, default=128, help="MiB per file")
    p.add_argument("--bps", type=float, default=35e6, help="read throttle per recorder, B/s")
    p.add_argument("--dir", default="/var/tmp", help="where volumes, copies and spool go")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for ingest")
    p.add_argument("--fsname", default="evbench-bays", help="mount source name prefix")
    return p


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("bench/bays.py needs root (FUSE mounts, dropping the page cache)")
    print(run(parser().parse_args()).report())
