"""Fault harness shared by tests/faults and bench/soak.py: recorders, invariants, kill runner.

- `Recorder` writes evidence clips on a simulated recorder volume and keeps the manifest of
  what each file is (SHA-256), so the invariants can be checked after the agent erased files.
- `check_invariants` checks, against the ledger, the spool and the volumes (DESIGN.md, issue 8):
  every evidence file on a source is in the ledger exactly once (spooled/archived/released
  with the right SHA-256, or quarantined/failed with a reason); no spool file unaccounted for;
  nothing released (or missing from a recorder) unless the wipe gate held; the custody chain
  and checkpoints verify; no duplicate rows. `final=False` is the subset that must hold at
  any instant, even right after a SIGKILL, before recovery ran.
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
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_ENV = "EVIDENCE_FAULT_SEED"
EVIDENCE_EXTS = (".mp4", ".mov", ".avi", ".ts", ".mkv", ".wav", ".jpg", ".jpeg")
HASHED = ("spooled", "archived", "released", "quarantined")


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
    manifest: dict[bytes, str] = field(default_factory=dict)  # rel path -> SHA-256
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

    def adopt(self) -> None:
        """Add every evidence file already on the volume to the manifest (as it is now)."""
        for p in self.volume.rglob("*"):
            if p.is_file() and not p.is_symlink() and p.suffix.lower() in EVIDENCE_EXTS:
                self.manifest[os.fsencode(p.relative_to(self.volume))] = sha256_of(p)


# --- invariants -----------------------------------------------------------------------------


def _rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=60)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def _spool_files(spool: Path) -> tuple[set[str], set[str]]:
    """(copies, temp files) under the spool."""
    copies, temps = set(), set()
    if not spool.exists():
        return copies, temps
    for p in spool.rglob("*"):
        if p.is_file() or p.is_symlink():
            (temps if ".tmp" in p.relative_to(spool).parts else copies).add(str(p))
    return copies, temps


def check_invariants(
    config: Path, recorders: list[Recorder], *, final: bool, release_after: str = "archived"
) -> list[str]:
    """Violations (empty list = all invariants hold). See the module docstring."""
    from agent import config as config_mod
    from agent import verify
    from agent.context import Context

    cfg = config_mod.load(config, environ={})
    db = cfg.ledger_path
    if not db.exists():
        return [] if not final else ["no ledger at all"]
    bad: list[str] = []
    rows = _rows(
        db,
        "SELECT r.*, d.serial FROM recordings r JOIN devices d ON d.id = r.device_id",
    )
    by_key: dict[tuple[str, bytes], list[sqlite3.Row]] = {}
    for r in rows:
        by_key.setdefault((r["serial"], bytes(r["source_path_raw"])), []).append(r)
    for (serial, rel), rs in by_key.items():
        if len(rs) > 1:
            bad.append(f"{serial} {rel!r}: {len(rs)} ledger rows (duplicate)")
    events = _custody_by_recording(db)
    manifests = {rec.serial: rec for rec in recorders}
    for r in rows:
        bad += _check_row(r, manifests, events, release_after)
    for rec in recorders:
        bad += _check_sources(rec, by_key, final)
    copies, temps = _spool_files(cfg.spool_dir)
    vouched = {r["spool_path"] for r in rows if r["spool_path"]}
    if final:
        bad += [f"spool temp file left after recovery: {t}" for t in sorted(temps)]
        bad += [f"spool file no ledger row vouches for: {c}" for c in sorted(copies - vouched)]
    ctx = Context(cfg)
    try:
        report = verify.run(ctx)
    finally:
        ctx.close()
    bad += [f"verify: {p.kind} {p.subject}: {p.message}" for p in report.problems]
    return bad


def _custody_by_recording(db: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in _rows(db, "SELECT recording_id, type FROM custody ORDER BY seq"):
        if e["recording_id"]:
            out.setdefault(e["recording_id"], []).append(e["type"])
    return out


def _check_row(
    r: sqlite3.Row,
    manifests: dict[str, Recorder],
    events: dict[str, list[str]],
    release_after: str,
) -> list[str]:
    rid, state, rel = r["id"], r["state"], bytes(r["source_path_raw"])
    rec = manifests.get(r["serial"])
    where = f"recording {rid} ({r['serial']} {r['source_path']}, {state})"
    bad = []
    if events.get(rid, [None])[0] != "recording.discovered":
        bad.append(f"{where}: custody does not start with recording.discovered")
    if rec is not None and rel not in rec.manifest:
        bad.append(f"{where}: no such evidence file was ever on the recorder")
    elif rec is not None and state in HASHED and r["sha256"] != rec.manifest[rel]:
        bad.append(f"{where}: SHA-256 {r['sha256']} but the source is {rec.manifest[rel]}")
    if state in HASHED and not (r["spool_path"] and Path(r["spool_path"]).is_file()):
        bad.append(f"{where}: spool copy {r['spool_path']} missing")
    if state == "failed" and not r["reason"]:
        bad.append(f"{where}: failed without a reason")
    if state == "released":
        bad += _check_gate(r, where, events.get(rid, []), release_after)
    return bad


def _check_gate(r: sqlite3.Row, where: str, types: list[str], release_after: str) -> list[str]:
    """A released recording: the ledger shows every wipe-gate condition held before it."""
    bad = []
    if release_after == "never":
        bad.append(f"{where}: released although ingest.release_after is never")
    if not (r["sha256"] and r["verified_at"] and r["spooled_at"] and r["released_at"]):
        bad.append(f"{where}: released without a durable, verified spool copy")
    need = ["recording.spooled", "recording.released"]
    if release_after == "archived":
        if not (r["archive_ref"] and r["archive_verified_at"]):
            bad.append(f"{where}: released before it was archived and verified")
        need.insert(1, "recording.archived")
    if "recording.quarantined" in types:
        bad.append(f"{where}: a quarantined recording was released")
    pos = [types.index(t) if t in types else -1 for t in need]
    if -1 in pos or pos != sorted(pos):
        bad.append(f"{where}: custody order {types} lacks {need} in order")
    return bad


def _check_sources(
    rec: Recorder, by_key: dict[tuple[str, bytes], list[sqlite3.Row]], final: bool
) -> list[str]:
    bad = []
    for rel in rec.manifest:
        rs = by_key.get((rec.serial, rel), [])
        present = os.path.lexists(os.path.join(os.fsencode(rec.volume), rel))
        where = f"{rec.serial} {rel.decode(errors='replace')}"
        if not present and not any(r["state"] == "released" for r in rs):
            bad.append(f"{where}: gone from the recorder but not released through the gate")
        if not final:
            continue
        if len(rs) != 1:
            bad.append(f"{where}: {len(rs)} ledger rows, expected exactly one")
        elif rs[0]["state"] not in ("spooled", "archived", "released", "quarantined", "failed"):
            bad.append(f"{where}: left in state {rs[0]['state']}")
    return bad


# --- running the agent and killing it -------------------------------------------------------


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
        from agent import config as config_mod

        db = config_mod.load(self.config, environ={}).ledger_path
        rows = _rows(
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
