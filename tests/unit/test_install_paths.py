"""install-systemd from the config: every writable path in ReadWritePaths, warnings for paths
the sandbox hides, files where Debian expects an admin-local install, and the README's
`install-systemd --config FILE --rw` invocation (issue 15, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.cli.systemd_paths import configured_paths, writable_paths

REPO = Path(__file__).resolve().parents[2]


def _install(cfg: Path, dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_AGENT")}
    # The README's order: the global --config after the subcommand.
    return subprocess.run(
        [sys.executable, "-m", "agent", "install-systemd", "--config", str(cfg), "--rw",
         "--dest", str(dest), *extra],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


def _rw_paths(dest: Path) -> list[str]:
    unit = (dest / "etc/systemd/system/evidence-agent.service").read_text(encoding="utf-8")
    line = next(ln for ln in unit.splitlines() if ln.startswith("ReadWritePaths="))
    return line.split("=", 1)[1].split()


def test_every_writable_path_of_the_config_is_in_read_write_paths(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[station]\ndata_dir = "/srv/evidence"\n'
        '[detect]\nmount_roots = ["/media/evidence", "/media/evidence2"]\n'
        '[ingest]\nspool_dir = "/mnt/disk2/spool"\n'
        '[archive]\nurl = "file:///mnt/nas/evidence-archive"\noff_station = true\n'
        '[interview]\ncapture_dir = "/srv/evidence/interview"\n',
        encoding="utf-8",
    )
    proc = _install(cfg, tmp_path / "root")
    assert proc.returncode == 0, proc.stderr
    assert _rw_paths(tmp_path / "root") == [
        "/srv/evidence",
        "/media/evidence",
        "/media/evidence2",
        "/mnt/disk2/spool",
        "/mnt/nas/evidence-archive",
    ]  # capture_dir lies inside the data dir: not repeated
    assert "hidden" not in proc.stderr


def test_files_go_where_debian_expects_an_admin_local_install(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[station]\ndata_dir = "/srv/evidence"\n', encoding="utf-8")
    dest = tmp_path / "root"
    proc = _install(cfg, dest)
    assert proc.returncode == 0, proc.stderr
    written = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert written == [
        "etc/systemd/system/evidence-agent.service",
        "etc/tmpfiles.d/evidence-agent.conf",
        "etc/udev/rules.d/99-evidence-recorder.rules",
    ]
    assert not (dest / "usr").exists()


def test_paths_hidden_by_the_sandbox_are_warned_about(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[station]\ndata_dir = "/srv/evidence"\n'
        '[ingest]\nspool_dir = "/home/clerk/spool"\n'
        '[interview]\ncapture_dir = "/tmp/capture"\n',
        encoding="utf-8",
    )
    proc = _install(cfg, tmp_path / "root")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "hidden from the service" in ln]
    assert any("ingest.spool_dir = /home/clerk/spool" in w and "ProtectHome" in w for w in warnings)
    assert any("interview.capture_dir = /tmp/capture" in w and "PrivateTmp" in w for w in warnings)
    assert "/home/clerk/spool" in _rw_paths(tmp_path / "root")


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    data = {"ingest": {"spool_dir": "spool"}, "archive": {"url": "s3://bucket/x"}}
    found = configured_paths(data, tmp_path)
    assert found == {"ingest.spool_dir": tmp_path / "spool"}  # s3:// is not a local path
    assert writable_paths(Path("/a"), [Path("/a/m")], {"x": Path("/b")}) == [Path("/a"), Path("/b")]


def test_an_unusable_path_in_the_config_is_refused_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[ingest]\nspool_dir = "/srv/my spool"\n', encoding="utf-8")
    proc = _install(cfg, tmp_path / "root")
    assert proc.returncode == 64
    assert "/srv/my spool" in proc.stderr
    assert not (tmp_path / "root").exists()
