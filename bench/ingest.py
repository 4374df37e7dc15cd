"""Ingest throughput against cp + sync (+ sha256sum), the same files, one run.

Prints the ratio of this agent's `ingest` wall time to `cp` + `sync` + `sha256sum` and to
`cp` + `sync` alone, with the agent's re-read verify off and on, and the agent's peak RSS.
Targets (issue 2): verify off ≤ 0.75 against cp+sync+sha256sum (the hash overlaps the copy)
and ≤ 1.5 against cp+sync; verify on ≤ 1.0 against cp+sync+sha256sum; RSS < 150 MB.
Each agent run is repeated with encryption at rest (AES-256-GCM envelopes, issue 19): the
encrypted ratios are printed next to the plain ones (target: within 10 % of plain), and again
with `crypto.suite = "sm"` (SM4-GCM envelopes + SM3): the bench then prints one core's SM4-GCM
rate and how many USB 2.0 bays (35 MB/s each) one station sustains with it.
The page cache is dropped before every run (as root), so every tool reads from disk.

    .venv/bin/python bench/ingest.py [--clips 4] [--mib 256] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import agent_cmd, drop_caches, station_config, timed  # noqa: E402


def make_volume(root: Path, clips: int, mib: int) -> Path:
    vol = root / "volume"
    (vol / "DCIM" / "20260921").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text("vendor=ZFY\nserial=BENCH01\n", encoding="utf-8")
    block = os.urandom(1 << 20)
    for i in range(clips):
        path = vol / "DCIM" / "20260921" / f"BENCH01_100001_2026092108{i:02d}00_{i:04d}.MP4"
        with open(path, "wb") as fh:
            for j in range(mib):
                # distinct content per MiB so no layer can dedupe or compress it away
                fh.write(j.to_bytes(4, "little") + block[4:])
        os.utime(path, (1_700_000_000 + i, 1_700_000_000 + i))
    return vol


def run(args: argparse.Namespace) -> None:
    base = Path(tempfile.mkdtemp(prefix="evbench-ingest-", dir=args.dir))
    try:
        vol = make_volume(base, args.clips, args.mib)
        files = sorted(str(p) for p in vol.rglob("*.MP4"))
        total = args.clips * args.mib
        cached = drop_caches()
        results: dict[str, float] = {}
        rss: dict[str, int] = {}

        def peer(name: str, script: str) -> None:
            dst = base / f"dst-{name}"
            dst.mkdir()
            drop_caches()
            results[name], _ = timed(script.format(src=" ".join(files), dst=dst), shell=True)
            shutil.rmtree(dst)

        peer("cp+sync", "cp {src} {dst}/ && sync")
        peer("cp+sync+sha256sum", "cp {src} {dst}/ && sync && sha256sum {dst}/* >/dev/null")
        key = base / "keys" / "encryption.key"
        _write_key(key)
        for verify in (False, True):
            for suite in (None, "intl", "sm"):
                _agent_runs(base, vol, verify, key if suite else None, results, rss, suite)

        print(
            f"ingest benchmark: {args.clips} clips × {args.mib} MiB = {total} MiB"
            f" (page cache dropped before each run: {'yes' if cached else 'NO (not root)'})"
        )
        for name, secs in results.items():
            print(f"  {name:<22} {secs:7.2f} s  {total / secs:7.1f} MiB/s")
        base_h, base_c = results["cp+sync+sha256sum"], results["cp+sync"]
        for verify in ("off", "on"):
            for kind in ("agent", "daemon path"):
                a = results[f"{kind} verify={verify}"]
                e = results[f"{kind} verify={verify} encrypted"]
                sm = results[f"{kind} verify={verify} sm4"]
                print(
                    f"  verify {verify:<3} {kind:<11}: / (cp+sync+sha256sum) = {a / base_h:.2f}"
                    f" encrypted {e / base_h:.2f} sm4 {sm / base_h:.2f}"
                    f"   / (cp+sync) = {a / base_c:.2f} encrypted {e / base_c:.2f}"
                    f" sm4 {sm / base_c:.2f}   encrypted / plain = {e / a:.2f}"
                    f" sm4 / plain = {sm / a:.2f}"
                )
            peak = rss[f"agent verify={verify}"] / 1024
            peak_e = rss[f"agent verify={verify} encrypted"] / 1024
            print(f"  verify {verify:<3} `ingest` peak RSS {peak:.0f} MiB, encrypted {peak_e:.0f}")
        _print_bays()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def sm4_mb_per_s(seconds: float = 1.0) -> float:
    """One core's SM4-GCM rate (10^6 B/s) on 1 MiB chunks, as the envelope seals them."""
    import time

    from agent.core.sm4gcm import SM4GCM

    aead, data, nonce = SM4GCM(os.urandom(16)), os.urandom(1 << 20), os.urandom(12)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        aead.encrypt(nonce, data, b"bench")
        n += 1
    return n * len(data) / (time.perf_counter() - t0) / 1e6


def _print_bays() -> None:
    from agent.config.smbays import SM4_GCM_MB_PER_S, USB2_BAY_MB_PER_S, sm_bays

    rate = max(sm4_mb_per_s() for _ in range(3))
    print(
        f"  SM4-GCM on one core: {rate:.0f} MB/s → {sm_bays(rate)} USB 2.0 bay(s) at"
        f' {USB2_BAY_MB_PER_S:.0f} MB/s each with crypto.suite = "sm" (check-config assumes'
        f" {SM4_GCM_MB_PER_S:.0f} MB/s = {sm_bays()} bay(s), agent/config/smbays.py)"
    )


def _write_key(path: Path) -> None:
    from agent.station.kek import write_ring

    write_ring(path, [os.urandom(32)])


def _agent_runs(
    base: Path,
    vol: Path,
    verify: bool,
    key: Path | None,
    results: dict[str, float],
    rss: dict[str, int],
    suite: str | None = None,
) -> None:
    """`ingest` as a command and as the daemon does it, plain or (with `key`) encrypted
    with `suite` (crypto.suite)."""
    tag = f"verify={'on' if verify else 'off'}"
    tag += {None: "", "intl": " encrypted", "sm": " sm4"}[suite if key else None]
    data = base / "data"
    extra = f"verify_reread = {'true' if verify else 'false'}\n"
    extra += f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\n' if key else ""
    extra += f'suite = "{suite}"\n' if key and suite else ""
    cfg = station_config(base / "agent.toml", data, base / "media", extra)
    drop_caches()
    results[f"agent {tag}"], rss[f"agent {tag}"] = timed(agent_cmd(cfg, "ingest", str(vol)))
    shutil.rmtree(data)
    # The same work as the running daemon does it: no interpreter start-up, no imports.
    drop_caches()
    inner_cmd = [sys.executable, __file__, "--inner", str(cfg), str(vol)]
    out = subprocess.run(inner_cmd, check=True, capture_output=True, text=True).stdout
    results[f"daemon path {tag}"] = float(out.split()[0])
    shutil.rmtree(data)


def inner(config: str, volume: str) -> None:
    """Time register + copy in-process (what the daemon does when a volume appears)."""
    import time

    from agent.config import loader as config_mod
    from agent.ingest.ingestor import Ingestor
    from agent.station.context import Context

    ctx = Context(config_mod.load(config))
    ing = Ingestor(ctx)
    ctx.spool_tmp  # noqa: B018 - create dirs before the clock starts, as a running daemon has
    t0 = time.perf_counter()
    report = ing.register_volume(Path(volume))
    while (row := ing.claim([report.device_id], retry_seconds=0)) is not None:
        if ing.ingest(row).state == "failed":
            raise SystemExit(f"copy failed: {row['source_path']}")
    print(f"{time.perf_counter() - t0:.4f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3])
        raise SystemExit(0)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--mib", type=int, default=256)
    p.add_argument("--dir", default="/var/tmp", help="where to put source and copies (a disk)")
    run(p.parse_args())
