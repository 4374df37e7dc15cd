"""Latency from a recorder volume being mounted to the agent reading its first byte.

A real exFAT image on a loop device is mounted (exfat-fuse) under the mount root of a running
`evidence-agent run`; the latency is the time from the mount command returning to the agent's
`ingest.started` event for the first clip (emitted right before the first read). Target (issue
2): under 1 s. Needs root (losetup, mount). Repeats a few times and prints each figure.

    .venv/bin/python bench/detect.py [--repeat 3]
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
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import agent_cmd, station_config  # noqa: E402


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def make_image(base: Path, label: str, serial: str) -> tuple[Path, str]:
    img = base / f"evbench-{label}.img"
    with open(img, "wb") as fh:
        fh.truncate(32 << 20)
    _run("mkfs.exfat", "-n", label, str(img))
    loop = _run("losetup", "-f", "--show", str(img))
    staging = base / f"staging-{label}"
    staging.mkdir()
    _run("mount.exfat-fuse", loop, str(staging))
    (staging / "DCIM").mkdir()
    (staging / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n")
    for i in range(2):
        clip = staging / "DCIM" / f"{serial}_100001_2026092108{i:02d}00_{i:04d}.MP4"
        clip.write_bytes(os.urandom(1 << 20))
        # Footage on a docked recorder was recorded earlier (its mtime is the clip's end),
        # not a moment ago; a fresh mtime would make the agent wait for it to settle.
        ended = time.time() - 600 + i
        os.utime(clip, (ended, ended))
    _run("umount", str(staging))
    return img, loop


def first_read_at(db: Path, serial: str) -> float | None:
    if not db.exists():
        return None
    conn = sqlite3.connect(db, timeout=10)
    try:
        row = conn.execute(
            "SELECT at FROM outbox WHERE type='ingest.started' AND"
            " payload LIKE ? ORDER BY seq LIMIT 1",
            (f'%"{serial}"%',),
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return datetime.fromisoformat(row[0]).timestamp() if row else None


def run(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/detect.py needs root (loop devices and mounts)")
    base = Path(tempfile.mkdtemp(prefix="evbench-detect-"))
    media, data = base / "media", base / "data"
    media.mkdir()
    cfg = station_config(base / "agent.toml", data, media)
    agent = subprocess.Popen(agent_cmd(cfg, "run"), stderr=subprocess.DEVNULL)
    loops: list[tuple[Path, str]] = []
    figures = []
    try:
        time.sleep(2.0)  # let the daemon start up and create its ledger
        for i in range(args.repeat):
            serial = f"DET{i:04d}"
            img, loop = make_image(base, f"REC{i}", serial)
            point = media / f"REC{i}"
            point.mkdir()
            # t0 before the mount command: the mount itself counts against the latency, so the
            # figure is an upper bound on "mounted → first byte read".
            t0 = time.time()
            _run("mount.exfat-fuse", loop, str(point))
            loops.append((point, loop))
            while (t1 := first_read_at(data / "ledger.sqlite3", serial)) is None:
                if time.time() - t0 > 30:
                    raise SystemExit(f"no ingest of {serial} within 30 s")
                time.sleep(0.01)
            figures.append(t1 - t0)
            ms = 1000 * (t1 - t0)
            print(f"  mount {i + 1}: first byte read {ms:.0f} ms after the mount began")
        print(
            f"detect latency: median {1000 * sorted(figures)[len(figures) // 2]:.0f} ms, "
            f"max {1000 * max(figures):.0f} ms (target < 1000 ms)"
        )
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        for point, loop in loops:
            subprocess.run(["umount", str(point)], capture_output=True)
            subprocess.run(["losetup", "-d", loop], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    run(p.parse_args())
