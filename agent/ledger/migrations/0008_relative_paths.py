"""Migration 0008: spool paths and local archive refs become relative to the station's roots.

SQL cannot know where the roots are, so this one is Python: the loader (agent.ledger.db) passes
the roots from the config and the station id. A row whose path lies under no root (configured
or resolved spelling) is kept exactly as it is and flagged in `path_outside_roots`; nothing is
moved or deleted. The conversion is one custody event in the migration's transaction, and
each root that holds converted copies gets its marker (agent.ledger.paths).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from agent.ledger import custody
from agent.ledger import paths as stationpaths


def migrate(conn: sqlite3.Connection, roots: Mapping[str, Path], station: str | None) -> None:
    conn.execute("ALTER TABLE recordings ADD COLUMN path_outside_roots TEXT")
    converted: dict[str, int] = {"spool": 0, "archive": 0}
    present: dict[str, int] = {"spool": 0, "archive": 0}
    flagged: list[str] = []
    rows = conn.execute(
        "SELECT id, spool_path, archive_ref FROM recordings"
        " WHERE spool_path LIKE '/%' OR archive_ref LIKE 'file://%'"
    ).fetchall()
    for rid, spool_path, archive_ref in rows:
        updates: dict[str, str] = {}
        problems: list[str] = []
        if spool_path and spool_path.startswith("/"):
            rel = stationpaths.relative_to_root(spool_path, roots["spool"])
            if rel is None:
                problems.append(f"spool_path {spool_path} is outside {roots['spool']}")
            else:
                updates["spool_path"] = rel
                converted["spool"] += 1
                present["spool"] += Path(spool_path).is_file()
        if archive_ref and archive_ref.startswith("file://") and "archive" in roots:
            path = stationpaths.local_archive_root(archive_ref)
            rel = stationpaths.relative_to_root(path or "", roots["archive"])
            if rel is None:
                problems.append(f"archive_ref {archive_ref} is outside {roots['archive']}")
            else:
                updates["archive_ref"] = stationpaths.LOCAL_REF_PREFIX + rel
                converted["archive"] += 1
                present["archive"] += path is not None and path.is_file()
        if problems:
            updates["path_outside_roots"] = "; ".join(problems)
            flagged.append(rid)
        sets = ", ".join(f"{k} = ?" for k in updates)
        conn.execute(f"UPDATE recordings SET {sets} WHERE id = ?", (*updates.values(), rid))
    if rows:
        custody.append(
            conn,
            "ledger.paths_relative",
            {
                "migration": 8,
                "converted": converted,
                "flagged": flagged,
                "roots": {k: str(v) for k, v in roots.items()},
            },
        )
    if station is not None:
        _mark(roots, station, present)


def _mark(roots: Mapping[str, Path], station: str, present: dict[str, int]) -> None:
    """The roots this station used so far get their marker: they are the right ones, since
    copies the ledger's absolute paths named are there (an unmounted disk gets none)."""
    for name, n in present.items():
        root = roots.get(name)
        if n and root is not None and root.is_dir():
            stationpaths.write_marker(root, station, name)
