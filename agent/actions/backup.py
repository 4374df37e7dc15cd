"""`evidence-agent backup DEST` and `evidence-agent restore SRC`.

A plain `cp` of a running ledger is not a backup (WAL: the newest transactions live in the
-wal file until a checkpoint). `backup` takes the ledger with SQLite's online backup API (a
consistent snapshot while the daemon keeps ingesting), then copies the spool copies and local
archive objects that snapshot names (each re-hashed against the ledger while copying), the rest
of a local archive (sidecars, checkpoint anchors), the station keys, the config and the root
markers, and writes `MANIFEST.json` with the SHA-256 of every file. Copies ingested after the
snapshot are not in it: they are still on the recorders or in the next backup.

`restore` checks every hash in the manifest first, refuses a backup of another station or a
data dir that already holds a ledger, writes everything through O_EXCL (never over a file),
and records `station.restored` in the restored custody log. Paths in the ledger are relative
to the roots (agent.ledger.paths), so the restored station may live at any path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config.loader import AgentConfig
from agent.core import clock, rehash, sealedio
from agent.core.errors import AgentError
from agent.ledger import custody
from agent.ledger import paths as stationpaths
from agent.ledger.db import Ledger
from agent.station import kek
from agent.station.ownership import require_owner

logger = logging.getLogger(__name__)

SCHEMA = "evidence-agent/backup/1"
MANIFEST = "MANIFEST.json"
LEDGER = "ledger.sqlite3"


class BackupError(AgentError):
    """A backup or restore could not be done as asked; nothing was overwritten."""


@dataclass
class BackupResult:
    dest: Path
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _hash(path: Path) -> tuple[str, int]:
    with open(path, "rb") as f:
        return rehash.sha256_stream(f)


def _copy_new(src: Path, dest: Path, mode: int) -> tuple[str, int]:
    """Copy to a new file (O_EXCL|O_NOFOLLOW), fsync'd; returns (sha256, size) of the bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    h, n = hashlib.sha256(), 0
    fd = os.open(dest, flags, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        while data := fin.read(4 << 20):
            h.update(data)
            n += len(data)
            fout.write(data)
        fout.flush()
        os.fchmod(fout.fileno(), mode)
        os.fsync(fout.fileno())
    return h.hexdigest(), n


def _empty_dest(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory; name a new one")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(dest, 0o700)  # it holds the station's private key


def _snapshot(ledger_path: Path, dest: Path) -> None:
    src = sqlite3.connect(ledger_path, timeout=60)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)  # one consistent snapshot, concurrent writers keep going
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()
    os.chmod(dest, 0o600)


def _ledger_files(db: Path) -> Iterator[tuple[str, str, str]]:
    """(root name, relative path, sha256) of every copy the snapshot names."""
    conn = sqlite3.connect(db)
    try:
        for rel, sha in conn.execute(
            "SELECT spool_path, sha256 FROM recordings WHERE spool_path IS NOT NULL"
            " AND spool_path NOT LIKE '/%' AND spool_removed_at IS NULL AND sha256 IS NOT NULL"
        ):
            yield "spool", rel, sha
        for ref, sha in conn.execute(
            "SELECT archive_ref, sha256 FROM recordings WHERE archive_ref LIKE 'file:%'"
            " AND archive_ref NOT LIKE 'file://%'"
        ):
            yield "archive", ref[len(stationpaths.LOCAL_REF_PREFIX) :], sha
    finally:
        conn.close()


def backup(cfg: AgentConfig, dest: Path, config_path: Path | None) -> BackupResult:
    require_owner(cfg.station.data_dir, "backup")  # root drops to the owner; others refused
    if not cfg.ledger_path.exists():
        raise BackupError(f"no ledger at {cfg.ledger_path} (check station.data_dir)")
    _empty_dest(dest)
    result = BackupResult(dest)
    _snapshot(cfg.ledger_path, dest / LEDGER)
    result.files[LEDGER] = _entry(*_hash(dest / LEDGER))
    roots = stationpaths.roots(cfg)
    keys = kek.keyring(cfg)  # not backed up: the key lives outside the data dir
    for name, rel, sha in _ledger_files(dest / LEDGER):
        _copy_evidence(result, roots[name], f"{name}/{rel}", rel, sha, keys)
    if "archive" in roots:
        _copy_tree(result, roots["archive"], "archive")
    _copy_tree(result, cfg.keys_dir, "keys")
    for name, root in roots.items():
        if (root / stationpaths.MARKER).is_file():
            _copy_one(result, root / stationpaths.MARKER, f"markers/{name}.json", 0o400)
    if config_path is not None and config_path.is_file():
        _copy_one(result, config_path, "agent.toml", 0o600)
    _write_manifest(cfg, result)
    return result


def _entry(sha: str, size: int) -> dict[str, Any]:
    return {"sha256": sha, "size": size}


def _copy_one(result: BackupResult, src: Path, name: str, mode: int) -> None:
    if name in result.files:
        return
    result.files[name] = _entry(*_copy_new(src, result.dest / name, mode))


def _copy_evidence(
    result: BackupResult, root: Path, name: str, rel: str, sha: str, keys: Any = None
) -> None:
    try:
        src = stationpaths.safe_join(root, rel)
        _copy_one(result, src, name, 0o400)
    except (OSError, AgentError) as exc:
        result.problems.append(f"{name}: not copied: {exc}")
        return
    if result.files[name]["sha256"] != sha and not _sealed_matches(src, sha, keys):
        result.problems.append(f"{name}: SHA-256 does not match the ledger (copy is damaged)")


def _sealed_matches(src: Path, sha: str, keys: Any) -> bool:
    """An encrypted copy (docs/security.md) is checked by the SHA-256 of its plaintext."""
    try:
        return sealedio.is_sealed(src) and sealedio.hash_plain(src, keys)[0] == sha
    except (OSError, AgentError):
        return False


def _copy_tree(result: BackupResult, root: Path, prefix: str) -> None:
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.endswith(".partial"):
            continue
        if path.name == stationpaths.MARKER:
            continue
        rel = path.relative_to(root).as_posix()
        mode = 0o600 if prefix == "keys" else 0o400
        _copy_one(result, path, f"{prefix}/{rel}", mode)


def _write_manifest(cfg: AgentConfig, result: BackupResult) -> None:
    doc = {
        "schema": SCHEMA,
        "station": cfg.station.id,
        "created_at": clock.iso(clock.now()),
        "agent_version": __version__,
        "source_roots": {k: str(v) for k, v in stationpaths.roots(cfg).items()},
        "files": result.files,
        "problems": result.problems,
    }
    path = result.dest / MANIFEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    with Ledger(cfg.ledger_path, stationpaths.roots(cfg), cfg.station.id).tx() as conn:
        custody.append(
            conn,
            "station.backed_up",
            {
                "to": str(result.dest.resolve()),
                "files": len(result.files),
                "problems": len(result.problems),
            },  # fmt: skip
        )


# --- restore ----------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    try:
        doc = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{src / MANIFEST}: not a readable backup manifest ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BackupError(f"{src / MANIFEST}: not an evidence-agent backup ({SCHEMA})")
    return doc


def check_backup(src: Path, doc: dict[str, Any]) -> None:
    """Every file listed must be there with its hash, and nothing may escape the backup."""
    for name, want in doc["files"].items():
        path = stationpaths.safe_join(src, name)
        try:
            sha, size = _hash(path)
        except OSError as exc:
            raise BackupError(f"backup file {path} cannot be read: {exc}") from exc
        if (sha, size) != (want["sha256"], want["size"]):
            raise BackupError(f"backup file {path} does not match {MANIFEST}: it was altered")


def restore(cfg: AgentConfig, src: Path) -> int:
    """Restore into the configured data dir; returns how many files were written."""
    require_owner(cfg.station.data_dir, "restore")  # the restored files belong to the owner
    doc = read_manifest(src)
    if doc.get("station") != cfg.station.id:
        raise BackupError(
            f"{src} is a backup of station {doc.get('station')!r}, the config says station.id "
            f"= {cfg.station.id!r}: use the backup's config ({src / 'agent.toml'}) or fix it"
        )
    if cfg.ledger_path.exists():
        raise BackupError(
            f"a ledger already exists at {cfg.ledger_path}: restore only into an empty "
            "station.data_dir (move the old one aside first; nothing was changed)"
        )
    check_backup(src, doc)
    targets = stationpaths.roots(cfg)
    written = 0
    for name in doc["files"]:
        if name == LEDGER:
            continue
        dest = _restore_target(cfg, targets, name)
        if dest is None:
            continue
        mode = 0o600 if name.startswith("keys/") else 0o400
        if name.startswith("markers/"):
            mode = 0o440
        _copy_new(stationpaths.safe_join(src, name), dest, mode)
        written += 1
    tmp = cfg.ledger_path.with_name(f".{LEDGER}.restoring")
    tmp.unlink(missing_ok=True)
    _copy_new(src / LEDGER, tmp, 0o600)
    os.link(tmp, cfg.ledger_path)  # never over an existing ledger
    tmp.unlink()
    with Ledger(cfg.ledger_path, targets, cfg.station.id).tx() as conn:
        custody.append(
            conn,
            "station.restored",
            {
                "from": str(src.resolve()),
                "backup_created_at": doc.get("created_at"),
                "files": written + 1,
            },  # fmt: skip
        )
    return written + 1


def _restore_target(cfg: AgentConfig, targets: dict[str, Path], name: str) -> Path | None:
    head, _, rest = name.partition("/")
    if head == "keys":
        cfg.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return stationpaths.safe_join(cfg.keys_dir, rest)
    if head == "markers":
        root = targets.get(rest.removesuffix(".json"))
        return None if root is None else root / stationpaths.MARKER
    if head in ("spool", "archive") and head in targets:
        return stationpaths.safe_join(targets[head], rest)
    if head == "agent.toml":
        return None  # the operator installs the config; restore never replaces it
    logger.warning("backup file %s has no place in this station's roots; skipped", name)
    return None
