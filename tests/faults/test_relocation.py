"""A relocatable, restorable station (issue 12, item 3).

Reproduces what lost every spool copy before: the ledger stored absolute paths and the next
start's orphan sweep compared them as strings, so a data dir moved with `mv`, copied, restored
from a backup at another path, or reached through a symlink was declared "unaccounted" and
emptied. Now the ledger keeps paths relative to the roots: after each of those, `run`,
`verify` and `export` succeed and nothing is deleted. A root without its marker (an unmounted
disk) makes `run` refuse, naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

import pytest

from agent.archive.archiver import Archiver
from agent.ledger.paths import MARKER
from faults.daemonrun import run_until_ready
from fixtures.archive import drain
from fixtures.station import Station, wait_for


def _files(root: Path) -> dict[str, str]:
    """Every evidence file under a root (relative path -> SHA-256), markers and temps aside."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MARKER and ".tmp" not in p.parts:
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _prepared(make_station, bodycam) -> tuple[Station, list[str]]:
    """A station with three spooled recordings, two of them also in the local archive."""
    st = make_station()
    vol, _ = bodycam(serial="ZFY1201", clips=3, seconds=1.0)
    out = st.cli("ingest", str(vol), "--json", check=True)
    assert json.loads(out.stdout)["copied"] == 3
    ctx = st.context()
    ids = [r[0] for r in ctx.ledger.query("SELECT id FROM recordings ORDER BY id")]
    arch = Archiver(ctx)
    drain(arch)
    ctx.close()
    assert run_until_ready(st) == 0  # first start: creates the root markers
    return st, ids


def _elsewhere(st: Station, data_dir: Path) -> Station:
    """The same station's config (its operator register included), at another data dir and
    with a socket of its own for the gate."""
    cfg = st.dir / f"agent-{data_dir.name}.toml"
    text = st.config_path.read_text(encoding="utf-8")
    text = text.replace(f'data_dir = "{st.data_dir}"', f'data_dir = "{data_dir}"')
    sock = re.search(r'socket = "([^"]+)"', text)
    if sock:
        new_dir = tempfile.mkdtemp(prefix="eas-")
        text = text.replace(sock.group(1), f"{new_dir}/api.sock")
    cfg.write_text(text, encoding="utf-8")
    return Station(st.dir, cfg, data_dir, st.mount_root)


def _relocate(how: str, st: Station) -> Station:
    data = st.data_dir
    if how == "mv":
        new = st.dir / "bigger-disk" / "data"
        new.parent.mkdir()
        os.rename(data, new)  # `mv` on one filesystem
        return _elsewhere(st, new)
    if how == "copy":
        new = st.dir / "copied"
        shutil.copytree(data, new, symlinks=True)  # `cp -a`
        shutil.rmtree(data)  # the old disk is gone: nothing may still point there
        return _elsewhere(st, new)
    if how == "symlink":
        real = st.dir / "real-data"
        os.rename(data, real)
        link = st.dir / "link-data"
        link.symlink_to(real, target_is_directory=True)
        return _elsewhere(st, link)
    assert how == "backup"
    dest = st.dir / "backup"
    st.cli("backup", str(dest), check=True)
    manifest = json.loads((dest / "MANIFEST.json").read_text(encoding="utf-8"))
    assert manifest["problems"] == [] and "keys/station.ed25519.pem" in manifest["files"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    shutil.rmtree(data)  # the old PC is gone
    new = _elsewhere(st, st.dir / "new-pc" / "data")
    out = new.cli("restore", str(dest))
    assert out.returncode == 0, out.stderr
    return new


@pytest.mark.parametrize("how", ["mv", "copy", "symlink", "backup"])
def test_moved_copied_linked_or_restored_station_keeps_everything(
    how, make_station, bodycam, tmp_path
):
    st, ids = _prepared(make_station, bodycam)
    spool_before = _files(st.data_dir / "spool")
    archive_before = _files(st.data_dir / "archive")
    assert len(spool_before) == 3 and len(archive_before) >= 3

    new = _relocate(how, st)
    assert run_until_ready(new) == 0  # recovery ran: before the fix it emptied the spool
    assert _files(new.data_dir / "spool") == spool_before  # nothing deleted, nothing moved
    after = _files(new.data_dir / "archive")  # new checkpoint anchors may be added
    assert archive_before.items() <= after.items()

    verify = new.cli("verify", "--json")
    report = json.loads(verify.stdout)
    assert verify.returncode == 0 and report["recordings_checked"] == 3, verify.stdout

    out = tmp_path / "export"
    exp = new.cli("export", *ids, "--to", str(out), "--reason", "review", "--operator", "OP1")
    assert exp.returncode == 0, exp.stderr
    assert len(list(out.glob("*.MP4")) + list(out.glob("*.mp4"))) == 3
    conn = sqlite3.connect(new.data_dir / "ledger.sqlite3")
    flagged = conn.execute("SELECT COUNT(*) FROM recordings WHERE path_outside_roots IS NOT NULL")
    assert flagged.fetchone()[0] == 0
    if how == "backup":
        types = [r[0] for r in conn.execute("SELECT type FROM custody")]
        assert "station.restored" in types
    conn.close()


def test_unmounted_spool_disk_is_refused_not_emptied(make_station, bodycam):
    st, _ = _prepared(make_station, bodycam)
    spool = st.data_dir / "spool"
    os.rename(spool, st.dir / "spool-disk-unplugged")
    spool.mkdir()  # the bare mount point an unmounted second disk leaves behind
    proc = st.cli("run", timeout=60)
    assert proc.returncode == 78, proc.stderr
    assert str(spool) in proc.stderr and "no root marker" in proc.stderr
    assert list(spool.iterdir()) == []  # nothing written onto the wrong disk
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    states = {r[0] for r in conn.execute("SELECT state FROM recordings")}
    no_event = conn.execute("SELECT COUNT(*) FROM custody WHERE type LIKE 'integrity.%'")
    assert states == {"archived"} and no_event.fetchone()[0] == 0  # no copy declared missing
    conn.close()


def test_backup_refuses_to_restore_over_a_ledger(make_station, bodycam):
    st, _ = _prepared(make_station, bodycam)
    dest = st.dir / "bk"
    st.cli("backup", str(dest), check=True)
    before = _files(st.data_dir)
    out = st.cli("restore", str(dest))
    assert out.returncode != 0 and "already exists" in out.stderr
    assert _files(st.data_dir) == before


def test_backup_while_the_daemon_ingests_restores_elsewhere_and_verifies(
    make_station, bodycam, daemon
):
    st = make_station()
    vol, _ = bodycam(serial="ZFY1210", clips=6, seconds=2.0)
    daemon(st)
    shutil.copytree(vol, st.mount_root / "ZFY1210")  # docked: the daemon ingests it
    db = st.data_dir / "ledger.sqlite3"

    def hashed() -> int:
        if not db.exists():
            return 0
        conn = sqlite3.connect(db, timeout=30)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM recordings WHERE sha256 IS NOT NULL")
                       .fetchone()[0])  # fmt: skip
        except sqlite3.OperationalError:
            return 0
        finally:
            conn.close()

    wait_for(lambda: hashed() >= 1, timeout=60, what="first copy while ingesting")
    dest = st.dir / "live-backup"
    out = st.cli("backup", str(dest))
    assert out.returncode == 0, out.stderr
    in_backup = sqlite3.connect(dest / "ledger.sqlite3")
    n = in_backup.execute("SELECT COUNT(*) FROM recordings WHERE sha256 IS NOT NULL").fetchone()[0]
    in_backup.close()
    assert n >= 1
    wait_for(lambda: hashed() == 6, timeout=120, what="ingest finished after the backup")

    new = _elsewhere(st, st.dir / "elsewhere" / "data")
    restored = new.cli("restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    verify = new.cli("verify", "--json")
    report = json.loads(verify.stdout)
    assert verify.returncode == 0 and report["recordings_checked"] == n, verify.stdout
