"""Secrets come from the credentials file or $CREDENTIALS_DIRECTORY, never from the TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.core.errors import CredentialsError
from agent.station.credentials import Credentials, parse


def test_key_value_file_with_comments_and_quotes(tmp_path: Path) -> None:
    f = tmp_path / "creds"
    f.write_text("# device admin\nzfy_admin_password = '12 34'\n\nmqtt_password=\"p=w\"\n")
    f.chmod(0o600)
    creds = Credentials(f, environ={})
    assert creds.get("zfy_admin_password") == "12 34"
    assert creds.get("mqtt_password") == "p=w"
    assert creds.get("missing") is None


def test_credentials_directory_single_file_wins_over_bundle_and_file(tmp_path: Path) -> None:
    d = tmp_path / "credsdir"
    d.mkdir()
    (d / "zfy_admin_password").write_text("from-single\n")
    (d / "evidence-agent").write_text("zfy_admin_password=from-bundle\nother=b\n")
    f = tmp_path / "creds"
    f.write_text("zfy_admin_password=from-file\nthird=c\n")
    creds = Credentials(f, environ={"CREDENTIALS_DIRECTORY": str(d)})
    assert creds.get("zfy_admin_password") == "from-single"
    assert creds.get("other") == "b"
    assert creds.get("third") == "c"


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "creds"
    f.write_text("good=1\nthis line has no equals\n")
    with pytest.raises(CredentialsError, match=r"creds: line 2: expected KEY=VALUE"):
        Credentials(f, environ={}).get("good")


def test_missing_secret_says_where_it_looked(tmp_path: Path) -> None:
    f = tmp_path / "creds"
    f.write_text("")
    with pytest.raises(CredentialsError) as err:
        Credentials(f, environ={}).require("zfy_admin_password", "recorder admin password")
    assert "zfy_admin_password" in str(err.value) and str(f) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="does not exist"):
        Credentials(tmp_path / "nope", environ={}).get("x")


def test_parse_rejects_bad_keys() -> None:
    with pytest.raises(CredentialsError):
        parse("bad key=1\n", "x")
