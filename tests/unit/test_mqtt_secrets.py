"""MQTT credentials: systemd credentials directory, bundle file, credentials.file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.core.errors import CredentialsError
from agent.mqtt import secrets


def test_credentials_directory_single_files_win(tmp_path: Path) -> None:
    d = tmp_path / "creds"
    d.mkdir()
    (d / "mqtt_username").write_text("station-7\n")
    (d / "mqtt_password").write_text("p@ss word\n")
    (d / "evidence-agent").write_text("MQTT_USERNAME=other\nMQTT_PASSWORD=other\n")
    creds = secrets.load(None, {"CREDENTIALS_DIRECTORY": str(d)})
    assert (creds.username, creds.password) == ("station-7", "p@ss word")
    assert "p@ss" not in repr(creds)


def test_bundle_then_credentials_file(tmp_path: Path) -> None:
    d = tmp_path / "creds"
    d.mkdir()
    (d / "evidence-agent").write_text("# secrets\nMQTT_USERNAME = 'dock-1'\n")
    f = tmp_path / "agent.secrets"
    f.write_text('MQTT_USERNAME=ignored\nMQTT_PASSWORD="from file"\n')
    f.chmod(0o600)
    creds = secrets.load(f, {"CREDENTIALS_DIRECTORY": str(d)})
    assert (creds.username, creds.password) == ("dock-1", "from file")


def test_no_credentials_is_anonymous(tmp_path: Path) -> None:
    creds = secrets.load(None, {})
    assert creds.username is None and creds.password is None


def test_errors_name_the_file_and_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CredentialsError, match=r"credentials.file .*nope does not exist"):
        secrets.load(missing, {})
    bad = tmp_path / "bad"
    bad.write_text("MQTT_PASSWORD\n")
    with pytest.raises(CredentialsError, match=r"bad: line 1: expected KEY=VALUE"):
        secrets.load(bad, {})
    only_pw = tmp_path / "only"
    only_pw.write_text("MQTT_PASSWORD=x\n")
    with pytest.raises(CredentialsError, match="MQTT_USERNAME is not"):
        secrets.load(only_pw, {})


def test_group_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "agent.secrets"
    f.write_text("MQTT_USERNAME=a\nMQTT_PASSWORD=b\n")
    f.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        secrets.load(f, {})
    assert "chmod 600" in caplog.text
