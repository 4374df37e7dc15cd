"""Spool layout and crash recovery of the spool: nothing is deleted by inference.

New copies go to ``<spool>/device-<device id>/<recording id><ext>``: every path component is
one the agent owns (a ledger row id, a UUIDv7, an extension reduced to ``[a-z0-9]``), never a
string a recorder supplied. Copies made by earlier releases (``<spool>/<serial>/...``) stay
where they are and are found through the path stored in their ledger row.

Recovery (`sweep`) after a crash touches only what it can prove is its own leftover:

- a file in ``<spool>/.tmp`` whose name is exactly a temp name the copier makes
  (``.<UUIDv7>.<ext>.partial``) and that no ledger row names is removed;
- a file that a ledger row names is never touched, whatever spelling of the path the row
  holds (looked up by the recording id in the agent's own file name, one row per file);
- anything else (a copy renamed into place but killed before its ledger commit, a file
  someone put there) is moved aside to ``<spool>/.orphans/`` with a custody event, and listed
  by `status` and `verify` until an operator deals with it.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.core import clock
from agent.core.safefs import display, stat_beneath
from agent.ledger import custody, events, integrity
from agent.ledger import paths as stationpaths
from agent.ledger import recordings as rec
from agent.rules import archive_keys
from agent.station.context import Context

logger = logging.getLogger(__name__)

ORPHANS = ".orphans"
_UUID7 = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
TEMP_RE = re.compile(rf"^\.{_UUID7}\.[a-z0-9]{{1,8}}\.partial$")
OWN_NAME_RE = re.compile(rf"^({_UUID7})\.[a-z0-9]{{1,8}}$")


def dest_for(spool: Path, device_id: int, recording_id: str, source_path: str) -> Path:
    """Where a new spool copy goes (created on demand); see the module docstring."""
    folder = spool / f"device-{int(device_id)}"
    folder.mkdir(exist_ok=True, mode=0o750)
    return folder / f"{recording_id}{archive_keys.extension(source_path)}"


class Known:
    """Which spool files ledger rows name, asked one file at a time.

    Every copy the agent makes (this release and earlier ones) is named `<recording id><ext>`,
    so a file on disk is looked up by that id: one primary-key read per file present, never a
    read of every recording in the station's history. A row names the file when the copy it
    points to has the same name, whatever spelling of the spool root the row or this process
    uses (a moved data dir, a symlink). Anything else is not named, and so is moved aside,
    never deleted.
    """

    def __init__(self, conn: sqlite3.Connection, cfg: AgentConfig) -> None:
        self.conn = conn
        self.cfg = cfg

    def names_file(self, path: Path) -> bool:
        if not os.path.lexists(path):
            return True  # gone meanwhile: nothing to do with it
        m = OWN_NAME_RE.match(path.name)
        if m is None:
            return False
        row = self.conn.execute(
            "SELECT spool_path FROM recordings WHERE id = ?", (m.group(1),)
        ).fetchone()
        # Stored relative to the spool root (migration 0008); flagged old rows stay absolute.
        stored = stationpaths.spool_file(self.cfg, row[0]) if row is not None else None
        return stored is not None and stored.name == path.name


def sweep(ctx: Context) -> int:
    """Recover the spool after a crash; returns how many stray files were moved aside.
    Call only with the spool lock held exclusively (see agent.ledger.copylocks)."""
    known = Known(ctx.ledger.connect(), ctx.cfg)
    moved = 0
    for f in sorted(ctx.spool_tmp.iterdir()):
        if known.names_file(f):
            continue
        if TEMP_RE.match(f.name) and f.is_file() and not f.is_symlink():
            f.unlink()  # our own temp of an interrupted copy: the source is still there
        else:
            moved += _move_aside(ctx, f, "not a temp name of this agent")
    for sub in sorted(ctx.spool.iterdir()):
        if sub.name.startswith(".") or sub.is_symlink() or not sub.is_dir():
            continue
        for f in sorted(sub.iterdir()):
            if not known.names_file(f):
                moved += _move_aside(ctx, f, "no ledger row names this file")
    return moved


def orphans_dir(ctx: Context) -> Path:
    return ctx.spool / ORPHANS


def list_orphans(ctx: Context) -> list[str]:
    """Files moved aside so far, relative to the spool (for `status` and `verify`)."""
    folder = orphans_dir(ctx)
    if not folder.is_dir():
        return []
    return sorted(_shown(p.relative_to(ctx.spool)) for p in folder.iterdir())


def _move_aside(ctx: Context, path: Path, why: str) -> int:
    folder = orphans_dir(ctx)
    folder.mkdir(exist_ok=True, mode=0o750)
    rel = path.relative_to(ctx.spool)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    target = folder / f"{stamp}-{'__'.join(rel.parts)}"
    n = 0
    while os.path.lexists(target):
        n += 1
        target = folder / f"{stamp}-{n}-{'__'.join(rel.parts)}"
    # Names in the spool are any bytes someone put there: shown escaped in custody and events.
    payload = {"from": _shown(rel), "to": _shown(target.relative_to(ctx.spool))}
    try:
        size = path.lstat().st_size
        with ctx.ledger.tx() as conn:
            custody.append(conn, "spool.orphan_moved", {**payload, "size": size, "reason": why})
            events.emit(conn, "spool.orphan", **payload, size=size)
            # Inside the transaction: a failed rename rolls the custody event back with it.
            os.rename(path, target)
    except OSError as exc:
        logger.error("spool file %s could not be moved aside to %s: %s; left in place",
                     payload["from"], folder, exc)  # fmt: skip
        return 0
    logger.warning(
        "spool file %s moved aside to %s (%s); nothing was deleted: check it and remove it "
        "by hand once it is accounted for",
        payload["from"],
        payload["to"],
        why,
    )
    return 1


def check_missing(ctx: Context) -> int:
    """Hashed recordings whose spool copy is gone: an `integrity.violation` each (custody and
    event, once), and back to `discovered` to be copied again while the source is still on
    the recorder unchanged. Returns how many were sent back."""
    rows = ctx.ledger.query(
        "SELECT r.id, r.spool_path, r.source_path_raw, r.size, r.mtime_ns, d.serial, d.volume,"
        " d.docked FROM recordings r JOIN devices d ON d.id = r.device_id"
        " WHERE r.state IN ('spooled','quarantined') AND r.spool_path IS NOT NULL"
        " AND r.spool_removed_at IS NULL"
    )
    back = 0
    for r in rows:
        copy = stationpaths.spool_file(ctx.cfg, r["spool_path"])
        if copy is not None and copy.is_file():
            continue
        try:
            docked = r["docked"] and r["volume"]
            st = stat_beneath(r["volume"], bytes(r["source_path_raw"])) if docked else None
        except OSError:
            st = None
        present = st is not None and (st.st_size, st.st_mtime_ns) == (r["size"], r["mtime_ns"])
        back += _report_missing(ctx, r, present)
    return back


def _report_missing(ctx: Context, r: sqlite3.Row, present: bool) -> int:
    rid = str(r["id"])
    with ctx.ledger.tx() as conn:
        last = conn.execute(
            "SELECT type, payload FROM custody WHERE recording_id=? ORDER BY seq DESC LIMIT 1",
            (rid,),
        ).fetchone()
        if not present and last is not None and last["type"] == "integrity.violation":
            return 0  # reported already; nothing changed since
        what = "copying it again from the recorder" if present else "source not on a recorder"
        integrity.report_violation(
            conn,
            rid,
            "spool",
            {"path": r["spool_path"], "reason": f"spool copy missing; {what}"},
            reason="missing",
        )
        if present:
            rec.transition(
                conn,
                rid,
                "discovered",
                fields={
                    "sha256": None,
                    "spool_path": None,
                    "verified_at": None,
                    "reason": f"spool copy {r['spool_path']} was missing; copying again",
                },
            )
    logger.error(
        "recording %s (%s): spool copy %s is missing; %s", rid, r["serial"], r["spool_path"], what
    )
    return 1 if present else 0


def _shown(rel: Path) -> str:
    return display(os.fsencode(rel))
