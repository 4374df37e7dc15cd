"""A synthetic ledger of N recordings, written through the project's own write functions.

Devices (`devices.dock`), recordings (`recordings.discover_file`, `transition`),
custody events (`custody.append`), metadata versions (`metadata.add_version`) and outbox
events (`events.emit`): the same functions the daemon uses, each taking the connection of the
caller's transaction, so the builder commits every `BATCH` rows with `synchronous=OFF`.

Recordings span one year of start times over `recorders` recorders; most are archived (spool
copy removed), and the newest few hundred are in every other state, as on a station in
service; nothing is docked, and the spooled ones wait out an archive outage (their spool
copies do not exist). The result is cached by (N, recorders, schema version, builder
version): a second call copies it, and a cache made at an older schema version is copied and
upgraded in place by the migrations, as a station's ledger is.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.core import clock
from agent.ledger import custody, devices, events
from agent.ledger import recordings as rec
from agent.ledger.db import Ledger, _migrations
from agent.recorders.volume import SourceFile
from agent.tagging import metadata
from drivers.base import DeviceIdentity

BATCH = 10_000
BUILDER = 2  # bump when the synthetic data changes: the cache key carries it
YEAR = timedelta(days=365)
OPEN_STATES = ("discovered", "copying", "spooled", "failed", "quarantined")


def schema_version() -> int:
    return max(number for number, _name, _sql in _migrations())


def cached_ledger(path: Path, n: int, recorders: int, cache_dir: Path) -> Path:
    """Build (or copy from `cache_dir`) a ledger of `n` recordings at `path`."""
    cached = cache_dir / f"scale-{n}-{recorders}-v{schema_version()}-b{BUILDER}.db"
    if not cached.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        older = _older_cache(cache_dir, n, recorders)
        if older is not None:
            # A station upgrades in place: the same migrations on the same data, in minutes
            # less than building it again.
            shutil.copyfile(older, tmp)
            Ledger(tmp).close()
        else:
            build(tmp, n, recorders)
        tmp.rename(cached)
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, path)
    return path


def _older_cache(cache_dir: Path, n: int, recorders: int) -> Path | None:
    """The newest cached ledger of the same data made at an older schema version."""
    found = []
    for p in cache_dir.glob(f"scale-{n}-{recorders}-v*-b{BUILDER}.db"):
        version = p.name.split("-v")[-1].split("-b")[0]
        if version.isdigit() and int(version) < schema_version():
            found.append((int(version), p))
    return max(found)[1] if found else None


class _Clock:
    """The builder's clock: recordings are discovered over a year, not all this second."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def build(path: Path, n: int, recorders: int = 500, seed: int = 13) -> None:
    real_now = clock.now
    end = real_now()
    fake = _Clock(end - YEAR)
    clock.now = fake  # type: ignore[assignment]
    try:
        ledger = Ledger(path)
        conn = ledger.connect()
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes stay in memory
        _write(conn, n, recorders, fake, end, random.Random(seed))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ledger.close()
    finally:
        clock.now = real_now  # type: ignore[assignment]


def _devices(conn: sqlite3.Connection, recorders: int) -> list[int]:
    ids = []
    conn.execute("BEGIN IMMEDIATE")
    for i in range(recorders):
        ident = DeviceIdentity(
            vendor="bench",
            serial=f"BC{i:06d}",
            source="devinfo",
            officer_id=f"{100000 + i}",
            unit_id=f"unit-{i % 12:02d}",
        )
        docked = devices.dock(
            conn, ident, registered=True, inventory_status="in_service", quarantine=False
        )
        ids.append(docked.device_id)
    # Nothing docked: an idle station between shifts.
    conn.execute(
        "UPDATE devices SET docked = 0, volume = NULL, last_undocked = ?",
        (clock.iso(clock.now()),),
    )
    conn.execute("COMMIT")
    return ids


def _write(
    conn: sqlite3.Connection,
    n: int,
    recorders: int,
    fake: _Clock,
    end: datetime,
    rnd: random.Random,
) -> None:
    devices = _devices(conn, recorders)
    step = YEAR / max(n, 1)
    open_from = n - min(n // 100, 500)  # the newest rows: open work in every state
    conn.execute("BEGIN IMMEDIATE")
    for i in range(n):
        fake.at = end - YEAR + step * i
        _one(conn, i, devices[i % len(devices)], fake.at, i >= open_from, rnd)
        if (i + 1) % BATCH == 0:
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
    conn.execute("COMMIT")


def _one(
    conn: sqlite3.Connection,
    i: int,
    device_id: int,
    at: datetime,
    open_work: bool,
    rnd: random.Random,
) -> None:
    start = at - timedelta(hours=rnd.uniform(2, 30))
    stop = start + timedelta(minutes=rnd.uniform(1, 20))
    deadline = stop + timedelta(days=3)
    size = rnd.randint(20_000_000, 400_000_000)
    f = SourceFile(f"DCIM/{i:08d}.MP4".encode(), size, int(stop.timestamp() * 1e9))
    fields = {
        "start": clock.iso(start),
        "end": clock.iso(stop),
        "start_source": "filename",
        "end_source": "mvhd",
        "deadline": clock.iso(deadline),
    }
    rid, _ = rec.discover_file(conn, device_id, f, fields)
    state = OPEN_STATES[i % len(OPEN_STATES)] if open_work else "archived"
    if state in ("discovered", "copying", "failed"):
        if state != "discovered":
            rec.transition(
                conn, rid, state, fields={"reason": "bench" if state == "failed" else None}
            )
        return
    sha = f"{rnd.getrandbits(256):064x}"
    at_iso = clock.iso(at)
    extra: dict[str, object] = {
        "sha256": sha,
        "spool_path": f"bench/{rid}.mp4",  # relative to the spool root, as stored since 0008
        "spooled_at": at_iso,
        "verified_at": at_iso,
        "deadline_met_at": at_iso,
    }
    if state == "spooled":
        # Waiting out an archive outage (the synthetic spool copies do not exist on disk):
        # the idle daemon must not spend the benchmark retrying them.
        extra.update(archive_error="bench: store unreachable", archive_retry_at="9999-12-31")
    if state == "archived":
        extra.update(
            archive_ref=f"s3://evidence/{rid}",
            archive_verified_at=at_iso,
            archived_at=at_iso,
            spool_removed_at=at_iso,
        )
    rec.transition(conn, rid, state, fields=extra)
    custody.append(conn, f"recording.{state}", {"sha256": sha}, recording_id=rid)
    if i % 4 == 0:
        doc = {"case_number": f"A{i:010d}", "category": "routine"}
        metadata.add_version(
            conn, rid, doc, ["case_number"], actor="bench", reason=None, origin="cli"
        )
    if i % 50 == 0:
        events.emit(conn, "ingest.completed", recording=rid, serial=f"{device_id}")


def ledger_bytes_per_recording(path: Path, n: int) -> float:
    size = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        size += wal.stat().st_size
    return size / max(n, 1)


def now_utc() -> datetime:
    return datetime.now(UTC)
