"""Helpers shared by the benchmarks: timing subprocesses, dropping caches, temp stations."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def drop_caches() -> bool:
    """Flush and drop the page cache so every tool reads its source from disk (root only)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def timed(
    cmd: list[str] | str, shell: bool = False, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command run to completion."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        shell=shell,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {cmd}\n{err}")
    return elapsed, usage.ru_maxrss


def agent_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent", "--config", str(config), "--log-level", "warning", *args]


def station_config(path: Path, data_dir: Path, mount_root: Path, extra: str = "") -> Path:
    path.write_text(
        f'[station]\nid = "bench"\ndata_dir = "{data_dir}"\n'
        f'[detect]\nmount_roots = ["{mount_root}"]\nsettle_seconds = 1.0\npoll_seconds = 1.0\n'
        f"[ingest]\nspool_reserve_bytes = 0\n{extra}\n",
        encoding="utf-8",
    )
    return path


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
