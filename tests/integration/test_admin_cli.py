"""The CLI as a station admin meets it: the installed config is found, a missing ledger is an
error, global options work in both places, bad values are usage errors, env mistakes are named,
and log lines carry journal priorities under systemd (issue 15, items 2 and 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.station import locate as station_defaults
from fixtures.station import ROOT, Station


def run_cli(
    *args: str, env: dict[str, str] | None = None, stderr: object = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_AGENT")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,  # type: ignore[arg-type]
        text=True,
        env=full,
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture
def etc_root(make_station: Callable[..., Station], tmp_path: Path) -> tuple[Path, Station]:
    """A fixture /etc holding evidence-agent/agent.toml of a station whose ledger exists."""
    st = make_station()
    etc = tmp_path / "etc"
    (etc / "evidence-agent").mkdir(parents=True)
    (etc / "evidence-agent" / "agent.toml").write_text(st.config_path.read_text("utf-8"), "utf-8")
    return etc, st


def test_no_config_reads_the_installed_station_config(etc_root: tuple[Path, Station]) -> None:
    etc, st = etc_root
    env = {"EVIDENCE_AGENT_SYSCONFDIR": str(etc)}
    status = run_cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["station"]["id"] == "test-station"
    check = run_cli("check-config", env=env)
    assert check.returncode == 0, check.stderr
    assert str(etc / "evidence-agent" / "agent.toml") in check.stdout
    assert f"data_dir {st.data_dir}" in check.stdout
    # The station's own key and ledger: no false integrity failure from embedded defaults.
    verify = run_cli("verify", "--json", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


def test_explicit_config_and_env_win_over_the_installed_file(
    etc_root: tuple[Path, Station], make_station: Callable[..., Station]
) -> None:
    etc, _ = etc_root
    other = make_station("[compliance]\nworking_days = 3\n", name="other")
    env = {"EVIDENCE_AGENT_SYSCONFDIR": str(etc), "EVIDENCE_AGENT_CONFIG": str(other.config_path)}
    check = run_cli("check-config", env=env)
    assert check.returncode == 0, check.stderr
    assert str(other.config_path) in check.stdout


def test_demo_and_simulate_never_read_the_installed_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "evidence-agent").mkdir(parents=True)
    (etc / "evidence-agent" / "agent.toml").write_text("this is [not toml\n", "utf-8")
    env = {"EVIDENCE_AGENT_SYSCONFDIR": str(etc)}
    assert station_defaults.choose_config(None, "demo", env) is None
    assert station_defaults.choose_config(None, "simulate", env) is None
    assert station_defaults.choose_config(None, "status", env) == str(
        etc / "evidence-agent" / "agent.toml"
    )
    # The broken file would fail any command that reads it; a simulator does not.
    out = tmp_path / "vol"
    sim = run_cli("simulate", "bodycam", "--out", str(out), "--clips", "1", "--seconds", "1",
                  env=env)  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    assert any(out.rglob("*.MP4"))
    broken = run_cli("check-config", env=env)
    assert broken.returncode == 78
    assert str(etc / "evidence-agent" / "agent.toml") in broken.stderr


@pytest.mark.parametrize("command", [["status"], ["verify"], ["report", "--json"]])
def test_missing_ledger_is_an_error_not_a_new_file(
    make_station: Callable[..., Station], command: list[str]
) -> None:
    st = make_station(ledger=False)
    proc = run_cli("--config", str(st.config_path), *command)
    assert proc.returncode == 66, proc.stderr
    ledger = st.data_dir / "ledger.sqlite3"
    assert f"no ledger at {ledger}" in proc.stderr
    assert "--config" in proc.stderr and "evidence-agent run" in proc.stderr
    assert not ledger.exists()
    assert not st.data_dir.exists()


@pytest.mark.parametrize(
    "order",
    [
        ["--config", "{cfg}", "--log-level", "debug", "status", "--json"],
        ["status", "--json", "--config", "{cfg}", "--log-level", "debug"],
        ["--log-level", "debug", "status", "--config", "{cfg}", "--json"],
        ["--config", "{cfg}", "interview", "list", "--json"],
        ["interview", "list", "--json", "--config", "{cfg}"],
    ],
)
def test_global_options_before_and_after_the_subcommand(station: Station, order: list[str]) -> None:
    args = [a.replace("{cfg}", str(station.config_path)) for a in order]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    if "status" in args:
        assert doc["station"]["id"] == "test-station"
    else:
        assert doc == []


def test_global_option_before_the_subcommand_is_not_reset_by_it(station: Station) -> None:
    """argparse copies subparser defaults over the namespace; ours must not undo --config."""
    from agent.cli.main import build_parser

    ns = build_parser().parse_args(["--config", "A.toml", "--log-level", "error", "status"])
    assert (ns.config, ns.log_level) == ("A.toml", "error")
    ns = build_parser().parse_args(["--config", "A.toml", "status", "--config", "B.toml"])
    assert ns.config == "B.toml"
    ns = build_parser().parse_args(["interview", "report", "last", "-c", "C.toml"])
    assert ns.config == "C.toml"


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["status", "--state", "spoold"], {}, "'spooled'"),
        (["status", "--since", "yesterday"], {}, "2026-09-30T08:00"),
        (["--log-level", "nonsense", "status"], {}, "'warning'"),
        (["status"], {"EVIDENCE_AGENT_LOG_LEVEL": "nonsense"}, "EVIDENCE_AGENT_LOG_LEVEL"),
        (["report", "--from", "last-week"], {}, "YYYY-MM-DD"),
        (["report", "--to", "2026-09-30T08:00"], {}, "YYYY-MM-DD"),
        (["tag", "--serial", "ZFY1", "--from", "yesterday", "--operator", "1"], {}, "ISO"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_valid_ones(
    station: Station, args: list[str], env: dict[str, str], needle: str
) -> None:
    proc = run_cli("--config", str(station.config_path), *args, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert proc.stdout == ""


def test_since_accepts_dates_and_times(station: Station) -> None:
    for since in ("2026-09-30", "2026-09-30T08:00", "2026-09-30T08:00:00+08:00"):
        proc = run_cli("--config", str(station.config_path), "status", "--json", "--since", since)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["recordings"] == []


def test_env_override_error_names_the_variable_not_the_file(station: Station) -> None:
    env = {"EVIDENCE_AGENT__STATION__TIMEZONE": "Mars/Olympus"}
    proc = run_cli("--config", str(station.config_path), "check-config", env=env)
    assert proc.returncode == 78
    assert "EVIDENCE_AGENT__STATION__TIMEZONE" in proc.stderr
    assert "the environment" in proc.stderr
    assert str(station.config_path) not in proc.stderr
    assert "Mars/Olympus" not in proc.stderr.split("unknown time zone")[0]
    typo = run_cli("--config", str(station.config_path), "status",
                   env={"EVIDENCE_AGENT__STATON__ID": "x"})  # fmt: skip
    assert typo.returncode == 78
    assert "EVIDENCE_AGENT__STATON__ID" in typo.stderr


def test_misspelt_single_underscore_variable_is_warned_about(station: Station) -> None:
    env = {
        "EVIDENCE_AGENT_STATION_ID": "dock-9",
        "EVIDENCE_AGENT_CONFIG": str(station.config_path),
        "EVIDENCE_AGENT_LOG_LEVEL": "info",
    }
    proc = run_cli("status", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "is not read by evidence-agent" in ln]
    assert len(warnings) == 1
    assert "EVIDENCE_AGENT_STATION_ID" in warnings[0]
    assert "EVIDENCE_AGENT__SECTION__KEY" in warnings[0]
    assert json.loads(proc.stdout)["station"]["id"] == "test-station"


def test_journal_priority_prefixes_only_when_stderr_is_the_journal_stream(
    station: Station, tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    with log.open("w") as fh:
        st = os.fstat(fh.fileno())
        env = {
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
            "EVIDENCE_AGENT_TYPO": "1",  # a warning to log
            "EVIDENCE_AGENT__STATION__TIMEZONE": "Mars/Olympus",
        }
        proc = run_cli("--config", str(station.config_path), "status", env=env, stderr=fh)
    assert proc.returncode == 78
    lines = log.read_text().splitlines()
    warning = next(ln for ln in lines if "EVIDENCE_AGENT_TYPO" in ln)
    assert warning.startswith("<4>WARNING ")
    # Not the journal (another inode): plain lines with a time stamp.
    other = run_cli("--config", str(station.config_path), "status",
                    env={**env, "JOURNAL_STREAM": "1:1"})  # fmt: skip
    plain = next(ln for ln in other.stderr.splitlines() if "EVIDENCE_AGENT_TYPO" in ln)
    assert not plain.startswith("<")


def test_simulate_interview_room_runs_without_a_terminal(tmp_path: Path) -> None:
    snippet = tmp_path / "room.toml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "simulate", "interview-room", "--no-panel",
         "--seconds", "3", "--config-out", str(snippet)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)  # still serving although stdin is at end of file
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.stdout.read() if proc.stdout else ""
    assert "simulated interview room running" in out
    assert "[[interview.cameras]]" in snippet.read_text("utf-8")
