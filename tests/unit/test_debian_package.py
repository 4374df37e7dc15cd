"""The files the Debian package ships are rendered from the repository, not copied by hand.

`debian/render-units` (run by debian/rules with the package's venv) turns config/agent.toml into
the station conffile and renders the unit, tmpfiles entry and udev rule for it. These tests
run it on the real config and templates, so a change to either that breaks the package shows
up here in seconds; the full build, install, upgrade and purge is the `.ci/package` stage.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "debian" / "render-units"


def _render(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RENDER), str(ROOT / "config" / "agent.toml"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_rendered_files_point_at_the_package_paths(tmp_path: Path) -> None:
    done = _render(tmp_path)
    assert done.returncode == 0, done.stderr
    unit = (tmp_path / "evidence-agent.service").read_text(encoding="utf-8")
    assert (
        "ExecStart=/opt/evidence-agent/bin/evidence-agent --config "
        "/etc/evidence-agent/agent.toml run"
    ) in unit.splitlines()
    assert "ReadWritePaths=/var/lib/evidence-agent /media/evidence" in unit.splitlines()
    tmpfiles = (tmp_path / "evidence-agent.tmpfiles").read_text(encoding="utf-8")
    assert "d /var/lib/evidence-agent 0750 evidence evidence -" in tmpfiles.splitlines()
    rule = (tmp_path / "99-evidence-recorder.rules").read_text(encoding="utf-8")
    # The shipped config never erases recorders: the packaged rule mounts read-only.
    assert "--options=ro,nosuid,nodev,noexec,uid=evidence" in rule
    for name in ("evidence-agent.service", "evidence-agent.tmpfiles", "99-evidence-recorder.rules"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert not re.search(r"@[A-Z][A-Z0-9_]*@", text), name
        assert str(ROOT) not in text, f"{name} names the checkout"


def test_station_config_is_the_repository_config_adapted(tmp_path: Path) -> None:
    assert _render(tmp_path).returncode == 0
    shipped = tomllib.loads((tmp_path / "agent.toml").read_text(encoding="utf-8"))
    repo = tomllib.loads((ROOT / "config" / "agent.toml").read_text(encoding="utf-8"))
    # station.id is left to the host name; every other key is the repository's.
    assert "id" not in shipped["station"]
    repo["station"].pop("id")
    assert shipped == repo
    text = (tmp_path / "agent.toml").read_text(encoding="utf-8")
    assert "never the data dir" in text
    assert "station key" in text


def test_shipped_config_passes_check_config(tmp_path: Path) -> None:
    assert _render(tmp_path).returncode == 0
    cli = Path(sys.executable).parent / "evidence-agent"
    done = subprocess.run(
        [str(cli), "--config", str(tmp_path / "agent.toml"), "check-config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration OK" in done.stdout


def test_render_refuses_a_config_it_cannot_adapt(tmp_path: Path) -> None:
    # A config/agent.toml reworded so an edit no longer applies fails the build, loudly.
    changed = tmp_path / "agent.toml"
    changed.write_text(
        (ROOT / "config" / "agent.toml").read_text(encoding="utf-8").replace("dock-01", "x"),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(RENDER), str(changed), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert "config/agent.toml no longer contains" in done.stderr
