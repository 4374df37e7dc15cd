"""Fault harness shared by tests/faults and bench/soak.py: recorders, invariants, kill runner.

- `Recorder` writes evidence clips on a simulated recorder volume and keeps the manifest of
  what each file is (SHA-256), so the invariants can be checked after the agent erased files.
- `check_invariants` (tests/faults/invariants.py, re-exported here) checks the invariants
  of the fault matrix against the ledger, the spool and the volumes.
- `KillRunner` runs `evidence-agent ingest` / `run` as subprocesses and SIGKILLs them at named
  crash points and at seeded random moments. The schedule comes from one seed (printed;
  EVIDENCE_FAULT_SEED replays it); where a random-moment kill lands depends on timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from faults.invariants import check_invariants, ledger_rows

__all__ = ["KillRunner", "Recorder", "check_invariants", "run_agent", "seed_from_env"]

ROOT = Path(__file__).resolve().parents[2]
SEED_ENV = "EVIDENCE_FAULT_SEED"
EVIDENCE_EXTS = (".mp4", ".mov", ".avi", ".ts", ".mkv", ".wav", ".jpg", ".jpeg")


def seed_from_env(default: int | None = None) -> int:
    raw = os.environ.get(SEED_ENV)
    if raw:
        return int(raw)
    return default if default is not None else random.SystemRandom().randrange(1 << 31)


def sha256_of(path: Path | bytes | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    return h.hexdigest()


# --- recorders and the manifest -----------------------------------------------------------


@dataclass
class Recorder:
    """A simulated recorder volume (a directory) whose clips are random bytes, fast to write."""

    volume: Path
    serial: str
    officer: str = "100001"
    seq: int = 0
    manifest: dict[bytes, str] = field(default_factory=dict)  # rel path -> SHA-256 now
    # Earlier contents of a path, oldest first: a file rewritten after it was hashed is a new
    # recording (DESIGN.md: path, size and mtime identify one); the old one stays in the ledger.
    history: dict[bytes, list[str]] = field(default_factory=dict)
    base: datetime = datetime(2026, 9, 21, 8, 0, 0)

    def __post_init__(self) -> None:
        (self.volume / "DCIM").mkdir(parents=True, exist_ok=True)
        info = self.volume / "DEVINFO.TXT"
        if not info.exists():
            info.write_text(
                f"vendor=ZFY\nserial={self.serial}\nofficer_id={self.officer}\n", encoding="utf-8"
            )

    def record(self, rng: random.Random, clips: int = 1, lo: int = 32 << 10, hi: int = 1 << 20):
        """Write `clips` new clips (sizes drawn from rng); returns their paths."""
        out = []
        for _ in range(clips):
            self.seq += 1
            start = self.base + timedelta(minutes=self.seq)
            name = f"{self.serial}_{self.officer}_{start:%Y%m%d%H%M%S}_{self.seq:04d}.MP4"
            path = self.volume / "DCIM" / f"{start:%Y%m%d}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            data = rng.randbytes(rng.randint(lo, hi))
            tmp = path.parent / f".{name}.rec"  # a recorder's file appears whole (renamed)
            tmp.write_bytes(data)
            stamp = start.timestamp() + 60
            os.utime(tmp, (stamp, stamp))
            os.rename(tmp, path)
            self.manifest[os.fsencode(path.relative_to(self.volume))] = hashlib.sha256(
                data
            ).hexdigest()
            out.append(path)
        return out

    @classmethod
    def of(cls, volume: Path, serial: str, manifest: dict[bytes, str] | None = None) -> Recorder:
        """A recorder whose volume exists already (read-only, say); nothing is written."""
        rec = cls.__new__(cls)
        rec.volume, rec.serial, rec.officer, rec.seq = volume, serial, "", 0
        rec.manifest, rec.history, rec.base = dict(manifest or {}), {}, cls.base
        return rec

    def changed(self, rel: bytes, sha: str) -> None:
        """The recorder rewrote `rel`; its content now hashes to `sha`."""
        if rel in self.manifest:
            self.history.setdefault(rel, []).append(self.manifest[rel])
        self.manifest[rel] = sha

    def versions(self, rel: bytes) -> list[str]:
        return [*self.history.get(rel, []), *([self.manifest[rel]] if rel in self.manifest else [])]

    def adopt(self) -> None:
        """Add every evidence file already on the volume to the manifest (as it is now)."""
        for p in self.volume.rglob("*"):
            if p.is_file() and not p.is_symlink() and p.suffix.lower() in EVIDENCE_EXTS:
                self.manifest[os.fsencode(p.relative_to(self.volume))] = sha256_of(p)


# --- running the agent and killing it -------------------------------------------------------

# The agent is started from a small launcher, which reports the agent's peak RSS (os.wait4).
# Measured straight from the test process it would be wrong: the child of a vfork/fork
# inherits the parent's RSS high-water mark at exec, and pytest's is large.
_LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}, fh)
"""


def peak_rss(cmd: list[str], report: Path, **popen: object) -> tuple[int, float]:
    """Run `cmd` to completion; returns (exit code, peak RSS in MiB)."""
    launcher = [sys.executable, "-c", _LAUNCHER, str(report), *cmd]
    subprocess.run(launcher, check=False, **popen)  # type: ignore[call-overload]
    got = json.loads(report.read_text(encoding="utf-8"))
    report.unlink()
    return int(got["rc"]), got["maxrss_kib"] / 1024


def agent_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent", "--config", str(config), *args]


@dataclass
class Outcome:
    command: str
    how: str  # "crashpoint NAME:N", "random T s", or "clean"
    returncode: int | None
    killed: bool
    stderr: str


def run_agent(
    config: Path,
    args: list[str],
    *,
    crashpoint: str | None = None,
    kill_after: float | None = None,
    kill_after_line: str | None = None,
    timeout: float = 60.0,
) -> Outcome:
    """Run the agent; SIGKILL it `kill_after` s after start (or after a stderr line containing
    `kill_after_line` appeared). A crash point makes it SIGKILL itself."""
    env = {**os.environ, "EVIDENCE_AGENT_LOG_LEVEL": "info"}
    env.pop("EVIDENCE_AGENT_CRASHPOINT", None)
    if crashpoint:
        env["EVIDENCE_AGENT_CRASHPOINT"] = crashpoint
    proc = subprocess.Popen(
        agent_cmd(config, *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if kill_after_line and kill_after_line in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    killed_by_us = False
    start = time.monotonic()
    if kill_after is not None:
        if kill_after_line:
            seen.wait(timeout)
        deadline = time.monotonic() + kill_after
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_by_us = True
    try:
        proc.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        reader.join(5)
        raise AssertionError(f"{args} did not finish in {timeout} s:\n{''.join(lines)}") from None
    reader.join(5)
    how = f"crashpoint {crashpoint}" if crashpoint else (
        f"random {kill_after:.3f} s" if kill_after is not None else "clean"
    )  # fmt: skip
    killed = proc.returncode == -signal.SIGKILL or killed_by_us
    return Outcome(" ".join(args), how, proc.returncode, killed, "".join(lines))


# Named crash points (DESIGN.md: during copy, between fsync and rename, between rename and the
# ledger commit, ...) and which command passes them.
INGEST_POINTS = (
    "ingest.recover",
    "copy.mid",
    "copy.after_fsync",
    "copy.after_rename",
    "ingest.after_commit",
)
DAEMON_POINTS = INGEST_POINTS + (
    "archive.before_put",
    "archive.before_rename",
    "archive.after_put",
    "wipegate.after_commit",
)


@dataclass
class KillRunner:
    """Seeded rounds of run-and-kill against one station; see the module docstring."""

    config: Path
    recorders: list[Recorder]
    seed: int
    release_after: str = "archived"
    log: Callable[[str], None] = print
    # More crash points for the daemon (e.g. the MQTT outbox's), and a hook run before each
    # round that may change the weather (stop or start a broker, an object store); it gets the
    # round's rng and returns what it did, for the log.
    extra_points: tuple[str, ...] = ()
    before_round: Callable[[random.Random], str | None] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def kills(self) -> int:
        return sum(o.killed for o in self.outcomes)

    def round(self, i: int) -> Outcome:
        rng = self.rng
        t0 = time.monotonic()
        weather = self.before_round(rng) if self.before_round else None
        target = rng.choice(self.recorders)
        if rng.random() < 0.6:  # the recorders keep recording between docks
            target.record(rng, rng.randint(1, 3))
        if rng.random() < 0.4:
            args, points = ["run"], DAEMON_POINTS + self.extra_points
        else:
            args, points = ["ingest", str(target.volume)], INGEST_POINTS
        if rng.random() < 0.55:
            point = f"{rng.choice(points)}:{rng.randint(1, 2)}"
            # the daemon never exits by itself: kill it anyway if the point is not reached
            after = rng.uniform(1.0, 2.0) if args[0] == "run" else None
            out = run_agent(self.config, args, crashpoint=point, kill_after=after)
        elif args[0] == "run":
            out = run_agent(self.config, args, kill_after=rng.uniform(0.2, 1.5))
        else:
            # a random moment of the real work: after the volume was registered
            out = run_agent(
                self.config,
                args,
                kill_after=rng.uniform(0.0, 0.06),
                kill_after_line="evidence files",
            )
        self.outcomes.append(out)
        problems = check_invariants(
            self.config, self.recorders, final=False, release_after=self.release_after
        )
        self.log(
            f"round {i} ({time.monotonic() - t0:.2f} s): {out.command.split(' ')[0]} {out.how}"
            f" -> rc {out.returncode}{' KILLED' if out.killed else ''}"
            f"{f' ({weather})' if weather else ''}; {len(problems)} violation(s)"
        )
        self.violations += [f"after round {i} ({out.command}, {out.how}): {p}" for p in problems]
        return out

    def run(self, kills: int, max_rounds: int = 400) -> None:
        i = 0
        while self.kills < kills and i < max_rounds:
            self.round(i)
            i += 1

    def settle(self, timeout: float = 60.0, until: Callable[[], bool] | None = None) -> None:
        """Clean restart: ingest every volume, then let the daemon archive and release (and
        run until `until()` holds, e.g. its outbox is drained)."""
        for rec in self.recorders:
            out = run_agent(self.config, ["ingest", str(rec.volume)], timeout=timeout)
            if out.returncode != 0:
                self.violations.append(f"clean ingest of {rec.volume} exited {out.returncode}")
        if self.release_after == "never":
            return
        proc = subprocess.Popen(
            agent_cmd(self.config, "run"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + timeout

            def busy() -> bool:
                return bool(self._pending()) or (until is not None and not until())

            while time.monotonic() < deadline and busy():
                time.sleep(0.2)
            if busy():
                self.violations.append(f"daemon did not settle in {timeout} s: {self._pending()}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _pending(self) -> list[str]:
        from agent.config import loader as config_mod

        db = config_mod.load(self.config, environ={}).ledger_path
        rows = ledger_rows(
            db,
            "SELECT id, state FROM recordings WHERE state NOT IN ('released', 'quarantined')"
            + (" AND state != 'archived'" if self.release_after == "spooled" else ""),
        )
        return [f"{r['id']} {r['state']}" for r in rows]

    def summary(self) -> str:
        points: dict[str, int] = {}
        for o in self.outcomes:
            if o.killed:
                key = o.how.split(":")[0] if o.how.startswith("crashpoint") else "random moment"
                points[key] = points.get(key, 0) + 1
        return json.dumps({"seed": self.seed, "kills": self.kills, "by_point": points})
