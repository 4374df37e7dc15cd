"""Safe export (issue 12, item 5): the target is the operator's, so nothing is trusted there.

Reproduced before the fix: a symlink planted in the target made `export` overwrite and chmod
a file outside it; an export killed mid-way left copies with no custody record; exports were
world-readable. Now: writes relative to a directory fd, no symlink followed, nothing replaced,
`export.started` before the first byte and `export.aborted` on SIGTERM/errors, owner-only
files and a SHA256SUMS that `sha256sum -c` accepts.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from fixtures.station import Station
from toolcheck import require_tool


def _ingested(station: Station, bodycam, n: int = 2) -> list[str]:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY1205", clips=n, seconds=1.0)
    station.cli("ingest", str(vol), check=True)
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    ids = [r[0] for r in conn.execute("SELECT id FROM recordings ORDER BY id")]
    conn.close()
    return ids


def _custody(station: Station) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(station.data_dir / "ledger.sqlite3")
    rows = conn.execute("SELECT type, recording_id FROM custody ORDER BY seq").fetchall()
    conn.close()
    return [(t, r) for t, r in rows if t.startswith(("export.", "recording.exported"))]


def _export(station: Station, ids: list[str], out: Path, env=None):  # type: ignore[no-untyped-def]
    args = ["export", *ids, "--to", str(out), "--reason", "review", "--operator", "OP1"]
    return station.cli(*args, "--json", env=env)


def test_symlinks_in_the_target_change_nothing_outside(station, bodycam, tmp_path):
    ids = _ingested(station, bodycam)
    victim = tmp_path / "outside" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("not evidence", encoding="utf-8")
    victim.chmod(0o644)
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{ids[0]}.mp4").symlink_to(victim)  # where the first copy would go
    (out / "SHA256SUMS").symlink_to(victim)
    proc = _export(station, ids, out)
    assert victim.read_text(encoding="utf-8") == "not evidence"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and [f["id"] for f in doc["failed"]] == [ids[0]]
    assert "already exists" in doc["failed"][0]["reason"]
    assert [e["recording_id"] for e in doc["exported"]] == [ids[1]]
    assert (out / f"{ids[0]}.mp4").is_symlink()  # left as it was, not replaced
    types = _custody(station)
    assert ("export.aborted", ids[0]) in types and ("recording.exported", ids[1]) in types

    link = tmp_path / "target-link"
    link.symlink_to(tmp_path / "outside", target_is_directory=True)
    proc = _export(station, ids, link)
    assert proc.returncode != 0 and "symlink" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["victim.txt"]


def test_export_is_owner_only_with_sha256sums(station, bodycam, tmp_path):
    ids = _ingested(station, bodycam)
    out = tmp_path / "fresh" / "out"
    proc = _export(station, ids, out)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o400, p
    sums = (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert len(sums) == 3  # two recordings and the manifest
    require_tool("sha256sum")
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True)
    assert check.returncode == 0, check.stdout
    started = [r for t, r in _custody(station) if t == "export.started"]
    assert sorted(started) == sorted(ids)


@pytest.mark.parametrize(
    ("crash", "rc"),
    [("export.after_file:1", -signal.SIGKILL), ("export.after_file:1:TERM", 128 + signal.SIGTERM)],
)
def test_export_killed_midway_is_recorded_as_started(station, bodycam, tmp_path, crash, rc):
    ids = _ingested(station, bodycam)
    out = tmp_path / "out"
    proc = _export(station, ids, out, env={"EVIDENCE_AGENT_CRASHPOINT": crash})
    assert proc.returncode == rc, proc.stderr
    types = _custody(station)
    assert [t for t, _ in types if t == "export.started"] == ["export.started"] * 2
    assert not any(t == "recording.exported" for t, _ in types)  # no copy handed out as done
    aborted = [r for t, r in types if t == "export.aborted"]
    if crash.endswith("TERM"):
        assert sorted(aborted) == sorted(ids)  # SIGTERM: the abort is recorded
    else:
        assert aborted == []  # SIGKILL: export.started stays alone, i.e. unfinished
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]
    shutil.rmtree(out)
