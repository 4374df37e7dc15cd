"""Paths the ledger stores, relative to the station's roots, and the marker in each root.

The ledger never stores an absolute path for a file the station owns: a spool copy is kept as
a path relative to the spool root (`ingest.spool_dir`), a local archive object as
`file:<key>` relative to the archive root. So the data dir can be moved (`mv`), copied,
restored from `evidence-agent backup`, or reached through a symlink, and every copy is still
found. Rows written before migration 0008 may still hold an absolute path outside every root:
those are kept as they are and flagged (`recordings.path_outside_roots`), never deleted.

Each root holds a marker file naming the station and a root id. When a root lacks its marker
while the ledger has copies there (an unmounted second disk, a mistyped `spool_dir`), `run`
refuses to start and names the path, instead of declaring every copy missing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from agent.config.loader import AgentConfig
from agent.core.errors import AgentError

logger = logging.getLogger(__name__)

MARKER = ".evidence-agent-root.json"
LOCAL_REF_PREFIX = "file:"


class RootError(AgentError):
    """A station root is missing its marker, or holds another station's marker."""

    exit_code = 78  # EX_CONFIG: the operator has to mount a disk or fix a path


def roots(cfg: AgentConfig) -> dict[str, Path]:
    """The roots the ledger's paths are relative to: data dir, spool, local archive."""
    out = {"data": cfg.station.data_dir, "spool": cfg.spool_dir}
    archive = local_archive_root(cfg.archive_url)
    if archive is not None:
        out["archive"] = archive
    return out


def local_archive_root(url: str) -> Path | None:
    return Path(urlparse(url).path) if url.startswith("file://") else None


def relative_to_root(path: str | Path, root: Path) -> str | None:
    """`path` relative to `root` (as configured or as resolved), else None."""
    p = Path(os.path.normpath(path))
    for spelling in {Path(os.path.normpath(root)), Path(os.path.realpath(root))}:
        try:
            rel = p.relative_to(spelling)
        except ValueError:
            continue
        if str(rel) != ".":
            return rel.as_posix()
    return None


def safe_join(root: Path, rel: str) -> Path:
    """`root/rel`, refusing a stored path that would leave the root after normalisation."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise AgentError(f"stored path {rel!r} is not inside {root}; refusing to follow it")
    return root.joinpath(*pure.parts)


def spool_stored(cfg: AgentConfig, path: Path) -> str:
    """The form of a spool copy's path the ledger keeps (relative to the spool root)."""
    rel = relative_to_root(path, cfg.spool_dir)
    if rel is None:
        raise AgentError(f"spool copy {path} is not under ingest.spool_dir {cfg.spool_dir}")
    return rel


def spool_file(cfg: AgentConfig, stored: str | None) -> Path | None:
    """The spool copy a ledger row names. An absolute (flagged, pre-0008) path stays as is."""
    if not stored:
        return None
    if os.path.isabs(stored):
        return Path(stored)
    return safe_join(cfg.spool_dir, stored)


# --- markers ----------------------------------------------------------------------------------


def read_marker(root: Path) -> dict[str, str] | None:
    try:
        doc = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RootError(f"{root / MARKER}: unreadable root marker ({exc})") from exc
    return doc if isinstance(doc, dict) else None


def write_marker(root: Path, station: str, name: str) -> dict[str, str]:
    """Create the marker once (O_EXCL, never over an existing one or through a symlink)."""
    doc = {"station": station, "root": name, "root_id": str(uuid.uuid4())}
    root.mkdir(parents=True, exist_ok=True, mode=0o750)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(root / MARKER, flags, 0o440)
    except FileExistsError:
        return read_marker(root) or doc
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    return doc


def has_copies_under(conn: sqlite3.Connection, name: str) -> bool:
    """Whether ledger rows name a file under root `name` (relative paths only).

    Asked only when a root has no marker (a first start, or a disk that is not mounted), and
    it stops at the first row: a station's history is never walked for it."""
    if name == "spool":
        sql = (
            "SELECT EXISTS (SELECT 1 FROM recordings WHERE spool_path IS NOT NULL"
            " AND spool_path NOT LIKE '/%' AND spool_removed_at IS NULL)"
        )
    elif name == "archive":
        sql = "SELECT EXISTS (SELECT 1 FROM recordings WHERE archive_ref LIKE 'file:%'"
        sql += " AND archive_ref NOT LIKE 'file://%')"
    else:
        return False  # the ledger itself lives in the data dir: its marker only names the station
    return bool(conn.execute(sql).fetchone()[0])


def check_roots(cfg: AgentConfig, conn: sqlite3.Connection) -> None:
    """Before `run` starts: every root is the one the ledger knows, or refuse naming it."""
    for name, root in roots(cfg).items():
        check_root(cfg, conn, name, root)


def check_root(cfg: AgentConfig, conn: sqlite3.Connection, name: str, root: Path) -> None:
    """Refuse a root that lacks its marker while the ledger has copies there (or holds
    another station's or root's marker); give a new, empty root its marker."""
    station = cfg.station.id
    marker = read_marker(root)
    if marker is None:
        if has_copies_under(conn, name):
            raise RootError(
                f"{root} has no root marker ({MARKER}) but the ledger has copies there: "
                f"mount the disk that holds the station's {name} root, or fix "
                f"{_key(name)} in the config; nothing was changed"
            )
        write_marker(root, station, name)
        logger.info("created root marker in %s (%s root)", root, name)
    elif marker.get("station") != station or marker.get("root") != name:
        raise RootError(
            f"{root / MARKER} belongs to station {marker.get('station')!r}, root "
            f"{marker.get('root')!r}, not this station's ({station!r}) {name} root: "
            f"check {_key(name)} and station.id"
        )


def _key(name: str) -> str:
    return {"data": "station.data_dir", "spool": "ingest.spool_dir"}.get(name, "archive.url")
