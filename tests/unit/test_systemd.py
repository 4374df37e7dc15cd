"""The systemd unit, tmpfiles entry and udev rule: rendered, installed and checked by systemd."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import install_systemd as systemd_install
from agent.cli.install_systemd import TARGETS, cli_install, default_values, install, render
from toolcheck import require_tool

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = "/srv/evidence-data"
MOUNT_ROOT = "/srv/evidence-media"
UNIT_REL = TARGETS["evidence-agent.service"]
RULES_REL = TARGETS["99-evidence-recorder.rules"]
TMPFILES_REL = TARGETS["evidence-agent.tmpfiles"]


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """Directory of the real installed `evidence-agent` script (verify checks ExecStart)."""
    venv_bin = Path(sys.executable).parent
    search = os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")])
    found = shutil.which("evidence-agent", path=search)
    if found:
        return Path(found).parent
    # FALLBACK STUB: only when the package's console script is not installed at all, so that
    # systemd-analyze still has an executable to check. Not the real agent.
    stub_dir = tmp_path / "stub-bin"
    stub_dir.mkdir()
    stub = stub_dir / "evidence-agent"
    stub.write_text("#!/bin/sh\n# test stub: the real evidence-agent script is missing\nexit 1\n")
    stub.chmod(0o755)
    return stub_dir


def _values(bindir: Path, rw: bool = False) -> dict[str, str]:
    return default_values(
        "/etc/evidence-agent/agent.toml", DATA_DIR, MOUNT_ROOT, "evidence", rw, bindir=bindir
    )


def _settings(unit_text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit_text.splitlines() if line.startswith(f"{key}=")]


def test_packaged_templates_are_copies_of_canonical_files() -> None:
    for name in TARGETS:
        canonical = (REPO / "systemd" / name).read_bytes()
        packaged = (REPO / "agent" / "defaults" / "systemd" / name).read_bytes()
        assert packaged == canonical, f"agent/defaults/systemd/{name} differs from systemd/{name}"
        assert systemd_install.template_text(name).encode() == canonical


def test_render_fills_placeholders_and_refuses_unknown_ones() -> None:
    assert render("a=@X@ b=@X@ mail@host", {"X": "1"}) == "a=1 b=1 mail@host"
    with pytest.raises(ValueError, match="@DATADIR@"):
        render("ReadWritePaths=@DATADIR@", {})


@pytest.mark.parametrize(
    ("data_dir", "user"),
    [("relative/dir", "evidence"), ("/with space", "evidence"), ("/ok", "Bad User")],
)
def test_unsafe_values_are_refused(data_dir: str, user: str, bindir: Path) -> None:
    with pytest.raises(ValueError):
        default_values("/etc/x.toml", data_dir, MOUNT_ROOT, user, False, bindir=bindir)


def test_default_bindir_finds_the_script_directory() -> None:
    bindir = systemd_install.default_bindir()
    assert bindir.is_absolute()


def test_install_writes_files_that_systemd_accepts(tmp_path: Path, bindir: Path) -> None:
    analyze = require_tool("systemd-analyze")
    dest = tmp_path / "root"
    paths = install(dest, _values(bindir), dry_run=False)
    assert sorted(paths) == sorted(dest / rel for rel in TARGETS.values())
    for path in paths:
        assert not re.search(r"@[A-Z][A-Z0-9_]*@", path.read_text()), path
    unit = dest / UNIT_REL
    # Trailing ":" keeps the built-in search path, for sysinit.target and modprobe@.service.
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"}
    proc = subprocess.run(
        [analyze, "verify", str(unit)], env=env, capture_output=True, text=True, timeout=60
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    bad = [line for line in output.splitlines() if "Unknown key" in line or "Failed" in line]
    assert not bad, output


def test_unit_hardening_allows_exactly_what_the_agent_needs(tmp_path: Path, bindir: Path) -> None:
    install(tmp_path, _values(bindir), dry_run=False)
    text = (tmp_path / UNIT_REL).read_text()
    assert _settings(text, "ExecStart") == [
        f"{bindir}/evidence-agent --config /etc/evidence-agent/agent.toml run"
    ]
    assert _settings(text, "ReadWritePaths") == [f"{DATA_DIR} {MOUNT_ROOT}"]
    assert set(_settings(text, "DeviceAllow")) == {
        "char-usb_device rw",
        "char-ttyACM rw",
        "char-ttyUSB rw",
        "char-video4linux rw",
        "char-alsa rw",
    }
    assert not _settings(text, "PrivateDevices")
    for key, value in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30"),
        ("Restart", "on-failure"),
        ("ProtectSystem", "strict"),
        ("DevicePolicy", "closed"),
        ("User", "evidence"),
        ("LoadCredential", "evidence-agent:/etc/evidence-agent/credentials"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ]:
        assert _settings(text, key) == [value], key
    assert not _settings(text, "StateDirectory")
    tmpfiles = (tmp_path / TMPFILES_REL).read_text().splitlines()
    assert f"d {DATA_DIR} 0750 evidence evidence -" in tmpfiles
    assert f"d {MOUNT_ROOT} 0755 root root -" in tmpfiles


_UDEV_PAIR = re.compile(r'\s*([A-Z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
_UDEV_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "ENV", "RUN", "GOTO", "LABEL", "ATTRS", "ATTR"}


def _udev_syntax_errors(text: str) -> list[str]:
    """Our own check where `udevadm verify` is missing: KEY op "value" pairs, comma-separated."""
    errors, gotos, labels = [], set(), set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pos, pairs = 0, []
        while pos < len(line):
            match = _UDEV_PAIR.match(line, pos)
            if not match:
                errors.append(f"line {number}: cannot parse at column {pos}: {line[pos:]!r}")
                break
            pairs.append(match.groups())
            pos = match.end()
        for key, _op, value in pairs:
            if key.split("{")[0] not in _UDEV_KEYS:
                errors.append(f"line {number}: unknown key {key}")
            if key == "GOTO":
                gotos.add(value)
            if key == "LABEL":
                labels.add(value)
    errors += [f"GOTO {g} has no LABEL" for g in gotos - labels]
    return errors


def test_udev_rule_is_valid_and_mounts_as_documented(tmp_path: Path, bindir: Path) -> None:
    install(tmp_path / "ro", _values(bindir), dry_run=False)
    install(tmp_path / "rw", _values(bindir, rw=True), dry_run=False)
    rules = tmp_path / "ro" / RULES_REL
    text = rules.read_text()
    udevadm = shutil.which("udevadm")
    help_text = ""
    if udevadm:
        help_text = subprocess.run([udevadm, "--help"], capture_output=True, text=True).stdout
    if udevadm and re.search(r"^\s+verify\b", help_text, re.M):
        proc = subprocess.run([udevadm, "verify", str(rules)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        assert _udev_syntax_errors(text) == []

    code = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    run = [line for line in code if "RUN{program}+=" in line]
    assert len(run) == 1 and 'ACTION=="add"' in run[0]
    # Every guard comes before the mount.
    for guard in ('SUBSYSTEM!="block"', 'ENV{ID_BUS}!="usb"', 'ENV{ID_FS_USAGE}!="filesystem"'):
        assert any(guard in line for line in code[: code.index(run[0])]), guard
    assert 'ENV{UDISKS_IGNORE}="1"' in text
    assert "--options=ro,nosuid,nodev,noexec," in run[0]
    assert f"$devnode {MOUNT_ROOT}/$env{{EVIDENCE_VOLUME}}" in run[0]
    assert 'ENV{ID_FS_TYPE}=="vfat", ENV{EVIDENCE_FS_OPTIONS}="codepage=936,iocharset=utf8"' in text
    assert 'ENV{ID_FS_TYPE}=="exfat", ENV{EVIDENCE_FS_OPTIONS}="iocharset=utf8"' in text
    rw_text = (tmp_path / "rw" / RULES_REL).read_text()
    assert "--options=rw,nosuid,nodev,noexec," in rw_text and "--options=ro" not in rw_text
    # Every non-comment line is explained by a comment right above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), f"uncommented rule: {line}"


def _args(dest: Path, **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "dest": str(dest),
        "dry_run": False,
        "rw": False,
        "user": None,
        "config": None,
        "data_dir": None,
        "mount_root": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_cli_install_takes_paths_from_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[station]\ndata_dir = "/srv/ev"\n[detect]\nmount_roots = ["/mnt/rec"]\n'
        '[ingest]\nrelease_after = "never"\n'
    )
    dest = tmp_path / "root"
    assert cli_install(_args(dest, config=str(config), user="ev")) == 0
    unit = (dest / UNIT_REL).read_text()
    assert _settings(unit, "ReadWritePaths") == ["/srv/ev /mnt/rec"]
    assert _settings(unit, "User") == ["ev"]
    assert f"--config {config} run" in _settings(unit, "ExecStart")[0]
    out = capsys.readouterr()
    assert "systemctl daemon-reload" in out.out
    assert "--rw" not in out.err  # release_after = never: read-only is right


def test_cli_install_dry_run_writes_nothing_and_warns_about_ro(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "root"
    assert cli_install(_args(dest, dry_run=True, config=str(tmp_path / "none.toml"))) == 0
    assert not dest.exists()
    out = capsys.readouterr()
    assert "[Service]" in out.out and "ReadWritePaths=/var/lib/evidence-agent /media/evidence" in (
        out.out
    )
    assert "--rw" in out.err  # default release_after is not `never`


def test_cli_install_rejects_a_bad_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_install(_args(tmp_path, user="no such user")) == 64
    assert "no such user" in capsys.readouterr().err
    assert not (tmp_path / UNIT_REL).exists()
