"""Config: shipped files validate, every key is documented, env overrides, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.config import loader as config_mod
from agent.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if (
            isinstance(ann, type)
            and issubclass(ann, BaseModel)
            and issubclass(ann, config_mod.Section)
        ):
            out += _keys(ann, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def test_shipped_configs_validate():
    for name in ("agent.toml", "demo.toml"):
        config_mod.load(ROOT / "config" / name, environ={})


def test_every_key_is_documented_in_agent_toml():
    text = (ROOT / "config" / "agent.toml").read_text(encoding="utf-8")
    missing = []
    for key in _keys(config_mod.AgentConfig):
        section, _, leaf = key.rpartition(".")
        has_section = not section or f"[{section}]" in text or f"[[{section}]]" in text
        has_key = re.search(rf"^#?\s*{re.escape(leaf)}\s*=", text, re.M) or re.search(
            rf"^#?\s*\[\[{re.escape(key)}\]\]", text, re.M
        )
        if not (has_section and has_key):
            missing.append(key)
    assert not missing, f"keys not documented in config/agent.toml: {missing}"


def test_env_overrides_win(tmp_path):
    cfg = config_mod.load(
        None,
        environ={
            "EVIDENCE_AGENT__INGEST__MAX_PARALLEL": "4",
            "EVIDENCE_AGENT__DETECT__MOUNT_ROOTS": '["/a", "/b"]',
            "EVIDENCE_AGENT__STATION__DATA_DIR": str(tmp_path),
        },
    )
    assert cfg.ingest.max_parallel == 4
    assert [str(p) for p in cfg.detect.mount_roots] == ["/a", "/b"]
    assert cfg.station.data_dir == tmp_path


def test_errors_name_every_bad_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(
        '[station]\nrole = "car"\ntimezone = "Mars/Base"\n[ingest]\nspeed = 3\n'
        '[mqtt]\nurl = "http://x"\n'
    )
    with pytest.raises(ConfigError) as err:
        config_mod.load(f, environ={})
    keys = {k for k, _ in err.value.problems}
    assert keys == {"station.role", "station.timezone", "ingest.speed", "mqtt.url"}


def test_check_config_exit_78_and_ok(station):
    ok = station.cli("check-config")
    assert ok.returncode == 0 and "configuration OK" in ok.stdout
    station.config_path.write_text("[station\n")
    bad = station.cli("check-config")
    assert bad.returncode == 78 and "(syntax)" in bad.stderr


def test_check_config_warns_of_mqtt_commands_without_an_operator_register(make_station):
    mqtt = '[mqtt]\nurl = "mqtt://127.0.0.1:1883"\ncommands_enabled = true\n'
    bare = make_station(mqtt + "[operators]\n", name="bare")  # no operators.file
    out = bare.cli("check-config")
    assert out.returncode == 0 and "operators.file" in out.stderr, out.stderr
    with_register = make_station(mqtt, name="with")  # the fixture's register
    out = with_register.cli("check-config")
    assert out.returncode == 0 and "mqtt.commands_enabled" not in out.stderr, out.stderr


def test_contradicting_calendar_override_fails_check_config(station, tmp_path):
    cal = tmp_path / "cal.toml"
    cal.write_text(
        '[[day]]\ndate = "2026-11-02"\nkind = "holiday"\n'
        '[[day]]\ndate = "2026-11-02"\nkind = "workday"\n'
    )
    text = station.config_path.read_text() + f'\n[compliance]\ncalendar_overrides = "{cal}"\n'
    station.config_path.write_text(text)
    out = station.cli("check-config")
    assert out.returncode == 78
    assert "compliance.calendar_overrides" in out.stderr and "2026-11-02" in out.stderr


def test_env_override_errors_name_the_variable_and_only_it() -> None:
    from agent.config.envcheck import blame

    env = {"EVIDENCE_AGENT__INGEST__MAX_PARALLEL": "x", "EVIDENCE_AGENT__STATON__ID": "a"}
    problems, source = blame(
        [
            ("ingest.max_parallel", "Input should be a valid integer"),
            ("staton", "unknown key (misspelt? see config/agent.toml for the valid keys)"),
            ("station.timezone", "unknown time zone"),
        ],
        env,
        "/etc/evidence-agent/agent.toml",
    )
    assert "EVIDENCE_AGENT__INGEST__MAX_PARALLEL" in problems[0][1]
    assert "EVIDENCE_AGENT__STATON__ID" in problems[1][1]
    assert problems[2] == ("station.timezone", "unknown time zone")  # the file's own problem
    assert source == "/etc/evidence-agent/agent.toml"
    _, only_env = blame([("ingest.max_parallel", "bad")], env, "/etc/x.toml")
    assert only_env == "the environment"
