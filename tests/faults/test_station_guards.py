"""Fault matrix: one daemon per data dir, one owner, and a station key never silently
replaced (issue 12, items 3 and 7).

On v0.1.0 two `run` daemons on one data dir both started and fought over the spool; a CLI
command run as root left root-owned files the service user could not use; and a missing
station key was replaced by a new one, after which every earlier checkpoint failed `verify`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.station import ROOT, Station, ledger_rows, wait_for, write_config
from toolcheck import require_tool, unavailable

NOBODY = 65534


def _volume(root: Path, serial: str = "ZFY0801") -> Path:
    vol = root / serial
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={serial}\n", encoding="utf-8")
    for i in range(2):
        p = vol / "DCIM" / f"{serial}_100001_2026092108{i:02d}00_{i:04d}.MP4"
        p.write_bytes(os.urandom(4096))
    return vol


def test_a_second_run_on_the_same_data_dir_is_refused(station, daemon) -> None:  # type: ignore[no-untyped-def]
    first = daemon(station)
    wait_for(
        lambda: (
            (station.data_dir / "locks" / "daemon.lock").exists()
            and ledger_rows(station, "SELECT 1 FROM checkpoints")
        ),
        timeout=60,
        what="the first daemon running",
    )
    second = station.cli("run", timeout=60)
    assert second.returncode == 75
    assert "already running on data dir" in second.stderr
    assert str(station.data_dir) in second.stderr and f"pid {first.pid}" in second.stderr
    assert first.poll() is None, "the first daemon must keep running"
    first.terminate()
    assert first.wait(timeout=30) == 0
    # Once it is gone, the lock is free again (the kernel dropped it with the process).
    third = station.popen("run")
    try:
        wait_for(lambda: ledger_rows(station, "SELECT 1 FROM checkpoints"), timeout=30)
        assert third.poll() is None
    finally:
        third.terminate()
        third.communicate(timeout=30)


def test_missing_station_key_stops_run_ingest_and_fails_verify(station, tmp_path) -> None:  # type: ignore[no-untyped-def]
    vol = _volume(tmp_path)
    station.cli("ingest", str(vol), check=True)  # ends with a signed checkpoint
    key = station.data_dir / "keys" / "station.ed25519.pem"
    assert ledger_rows(station, "SELECT 1 FROM checkpoints")
    key.unlink()
    run = station.cli("run", timeout=60)
    assert run.returncode != 0
    assert f"station key {key} is missing" in run.stderr and "Restore" in run.stderr
    assert not key.exists(), "a replacement key was generated"
    ingest = station.cli("ingest", str(vol))
    assert ingest.returncode != 0 and str(key) in ingest.stderr
    verify = station.cli("verify")
    assert verify.returncode == 1
    assert f"FAIL key {key}" in verify.stdout
    assert not key.exists()


def test_a_symlink_planted_as_the_station_key_is_refused(station, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = station.data_dir / "keys"
    keys.mkdir(parents=True)
    target = tmp_path / "elsewhere.pem"
    target.write_bytes(b"not a key")
    (keys / "station.ed25519.pem").symlink_to(target)
    run = station.cli("run", timeout=60)
    assert run.returncode != 0 and "not a symlink" in run.stderr
    assert target.read_bytes() == b"not a key"


def _world_readable(path: Path) -> bool:
    """Every directory from / down to `path` can be entered by any user."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _agent_cmd(config: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The agent as a command another user can run. The test venv's interpreter may live under
    /root (pyenv); then Debian's python3 of the same version runs the same code and packages."""
    env = {**os.environ, "HOME": "/"}
    python = sys.executable
    if not _world_readable(Path(sys.base_prefix)):
        python = "/usr/bin/python3"
        out = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert out.stdout.strip() == str(tuple(sys.version_info[:2])), (
            f"{sys.base_prefix} is not readable by other users and {python} is not Python "
            f"{sys.version_info[:2]}: install the test venv on a world-readable interpreter"
        )
        site = next(p for p in sys.path if p.endswith("site-packages"))
        env["PYTHONPATH"] = os.pathsep.join([site, str(ROOT)])
    return [python, "-m", "agent", "--config", str(config), *args], env


@pytest.fixture
def shared_station() -> Iterator[Station]:
    """A station in a world-readable temp dir (pytest's tmp_path is root-only), so another
    user can reach its config and volumes."""
    if os.geteuid() != 0:
        unavailable("owner tests need root (to chown the data dir and switch users)")
    base = Path(tempfile.mkdtemp(prefix="ea-owner-"))
    os.chmod(base, 0o755)
    data, mounts = base / "data", base / "media"
    data.mkdir()
    mounts.mkdir()
    os.chown(data, NOBODY, NOBODY)
    cfg = base / "agent.toml"
    write_config(cfg, data, mounts)
    os.chmod(cfg, 0o644)
    yield Station(base, cfg, data, mounts)
    shutil.rmtree(base, ignore_errors=True)


def test_ingest_as_root_drops_to_the_data_dir_owner(shared_station: Station) -> None:
    st = shared_station
    vol = _volume(st.mount_root)
    for p in [vol, *vol.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    cmd, env = _agent_cmd(st.config_path, "ingest", str(vol))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    made = [p for p in st.data_dir.rglob("*")]
    assert any(p.name == "ledger.sqlite3" for p in made) and any(p.suffix == ".mp4" for p in made)
    wrong = [str(p) for p in made if p.lstat().st_uid != NOBODY]
    assert wrong == [], "files left owned by root"


def test_ingest_as_another_user_is_refused_with_the_sudo_line(shared_station: Station) -> None:
    st = shared_station
    vol = _volume(st.mount_root)
    cmd, env = _agent_cmd(st.config_path, "ingest", str(vol))
    proc = subprocess.run(
        [require_tool("setpriv"), "--reuid=65533", "--regid=65533", "--clear-groups", *cmd],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 77, proc.stderr
    assert "belongs to nobody" in proc.stderr and "sudo -u nobody evidence-agent" in proc.stderr
    assert list(st.data_dir.iterdir()) == [], "nothing may be written before the refusal"


def test_run_as_root_drops_to_the_data_dir_owner(shared_station: Station) -> None:
    st = shared_station
    cmd, env = _agent_cmd(st.config_path, "run")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)  # fmt: skip
    try:
        wait_for(lambda: ledger_rows(st, "SELECT 1 FROM checkpoints"), timeout=60,
                 what="the daemon's first checkpoint")  # fmt: skip
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    made = list(st.data_dir.rglob("*"))
    assert any(p.name == "daemon.lock" for p in made)
    assert [str(p) for p in made if p.lstat().st_uid != NOBODY] == []
