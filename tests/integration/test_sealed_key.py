"""Keys off the disk (issue 19): `keys encryption init --systemd-creds` seals the station key
with the real systemd-creds (TPM2 where present, else the host key) and leaves no plaintext
key file; the sealed credential decrypts to the same key id; the daemon's way of reading it
($CREDENTIALS_DIRECTORY, as PID 1 fills it from LoadCredentialEncrypted=) opens the copies;
install-systemd writes LoadCredentialEncrypted= and systemd-analyze accepts the unit."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from agent.cli.install_systemd import TARGETS, cli_install
from fixtures.station import ledger_rows
from toolcheck import require_tool, unavailable

NAME = "evidence-agent-encryption-key"
LINE = f"LoadCredentialEncrypted={NAME}:/etc/evidence-agent/credstore.encrypted/{NAME}"


def _decrypt(cred: Path) -> str:
    tool = require_tool("systemd-creds")
    done = subprocess.run([tool, "decrypt", f"--name={NAME}", str(cred), "-"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _root_with_systemd_creds() -> None:
    require_tool("systemd-creds")
    if os.geteuid() != 0:
        unavailable("sealing with the host key needs root")


def _key_ids(text: str) -> list[str]:
    from agent.core import envelope
    from agent.station import kek

    return [envelope.kek_id(k).hex() for k in kek.parse_ring(text, Path("sealed"))]


def test_existing_key_is_sealed_and_no_plaintext_key_is_left(make_station, tmp_path, bodycam):
    _root_with_systemd_creds()
    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\n')
    st.cli("keys", "encryption", "init", check=True)
    before = json.loads(st.cli("keys", "encryption", "show", "--json", check=True).stdout)
    key_text = key.read_text()
    store = tmp_path / "credstore.encrypted"
    out = st.cli("keys", "encryption", "init", "--systemd-creds", "--credstore", str(store),
                 check=True).stdout  # fmt: skip
    cred = store / NAME
    assert not key.exists(), "the plaintext key file must not be left behind"
    assert f"removed the plaintext key file {key}" in out
    assert cred.stat().st_mode & 0o777 == 0o600
    assert _key_ids(_decrypt(cred)) == before["key_ids"]  # same key fingerprint
    secret = key_text.split("kek ")[1].split()[0]
    assert secret.encode() not in cred.read_bytes()  # sealed, not copied
    (event,) = ledger_rows(st, "SELECT payload FROM custody WHERE type = 'crypto.key_sealed'")
    assert json.loads(event["payload"])["key"] == before["key_ids"][0]

    # What PID 1 does for LoadCredentialEncrypted=: decrypt into a private directory, named by
    # $CREDENTIALS_DIRECTORY. The agent reads the key there (crypto.key_file is gone).
    creds = tmp_path / "run-credentials"
    creds.mkdir(mode=0o700)
    (creds / NAME).write_text(_decrypt(cred))
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    shown = json.loads(st.cli("keys", "encryption", "show", "--json", env=env, check=True).stdout)
    assert shown["key_ids"] == before["key_ids"]
    vol, _ = bodycam(serial="ZFY2001", clips=1, seconds=0.5)
    st.cli("ingest", str(vol), env=env, check=True)
    (row,) = ledger_rows(st, "SELECT spool_key_id FROM recordings")
    assert row["spool_key_id"] == before["key_ids"][0]
    assert st.cli("verify", env=env).returncode == 0
    assert st.cli("verify").returncode != 0  # no credential given, none sealed in /etc: no key


def test_init_makes_a_new_sealed_key_without_any_key_file(make_station, tmp_path):
    _root_with_systemd_creds()
    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(f'[crypto]\nkey_file = "{key}"\n')
    store = tmp_path / "cs"
    st.cli("keys", "encryption", "init", "--systemd-creds", "--credstore", str(store),
           check=True)  # fmt: skip
    assert not key.exists() and not key.parent.exists()
    ids = _key_ids(_decrypt(store / NAME))
    (event,) = ledger_rows(st, "SELECT payload FROM custody WHERE type = 'crypto.key_created'")
    assert json.loads(event["payload"])["key"] == ids[0]
    again = st.cli("keys", "encryption", "init", "--systemd-creds", "--credstore", str(store))
    assert again.returncode == 0 and _key_ids(_decrypt(store / NAME)) == ids  # never replaced
    assert len(ledger_rows(st, "SELECT seq FROM custody WHERE type LIKE 'crypto.key_%'")) == 1


def _bindir() -> Path:
    found = shutil.which("evidence-agent", path=str(Path(sys.executable).parent))
    if found is None:
        unavailable("the evidence-agent console script is not installed in the venv")
    return Path(found).parent


def _install(tmp_path: Path, dest: Path, config: str = "", **flags: object) -> int:
    cfg = tmp_path / "agent.toml"
    cfg.write_text(config)
    args = argparse.Namespace(config=str(cfg), dest=str(dest), dry_run=False, rw=False,
                              user="evidence", data_dir="/srv/evidence-data",
                              mount_root="/srv/evidence-media", **flags)  # fmt: skip
    return cli_install(args)


def test_install_systemd_loads_the_sealed_key_and_the_unit_verifies(tmp_path, monkeypatch):
    analyze = require_tool("systemd-analyze")
    monkeypatch.setattr(sys, "argv", [str(_bindir() / "evidence-agent")])
    plain, sealed = tmp_path / "plain", tmp_path / "sealed"
    assert _install(tmp_path, plain) == 0
    unit = (plain / TARGETS["evidence-agent.service"]).read_text()
    assert LINE not in [ln.strip() for ln in unit.splitlines()]  # only as a comment
    (sealed / "etc/evidence-agent/credstore.encrypted").mkdir(parents=True)
    (sealed / "etc/evidence-agent/credstore.encrypted" / NAME).write_bytes(b"sealed")
    assert _install(tmp_path, sealed) == 0
    path = sealed / TARGETS["evidence-agent.service"]
    assert LINE in path.read_text().splitlines()
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{path.parent}:"}
    proc = subprocess.run([analyze, "verify", str(path)], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert not [ln for ln in output.splitlines() if "Unknown key" in ln or "Failed" in ln]
    asked = tmp_path / "asked"
    assert _install(tmp_path, asked, sealed_key=True) == 0
    assert LINE in (asked / TARGETS["evidence-agent.service"]).read_text().splitlines()
    # crypto.key_file would win over the credential: refused, naming the key
    assert _install(tmp_path, asked, '[crypto]\nkey_file = "/etc/k"\n', sealed_key=True) == 64


def test_root_outside_the_unit_opens_the_sealed_key_and_never_writes_plaintext(
    make_station, tmp_path, monkeypatch, capsys
):
    """With the key sealed and no key file, a command run as root outside the unit (say
    `sudo evidence-agent verify`) opens the sealed key in memory; under crypto.encrypt = "auto"
    new copies are still sealed for it, never written in plaintext for want of a key file."""
    _root_with_systemd_creds()
    from agent.core import envelope
    from agent.station import kek, syscreds

    store = tmp_path / "credstore.encrypted"
    monkeypatch.setattr(syscreds, "CREDSTORE_DIR", store)  # instead of /etc on this host
    ring = [os.urandom(32)]
    syscreds.seal(kek.ring_text(ring).encode("ascii"), syscreds.credential_path())
    st = make_station(f'[crypto]\nkey_file = "{tmp_path / "gone.key"}"\n')
    cfg = st.cfg()
    assert not kek.key_path(cfg).exists()
    to = kek.recipients(cfg)
    assert to is not None and to.kek == ring[0]
    opened = kek.keyring(cfg)
    assert opened is not None and list(opened.keks) == [envelope.kek_id(ring[0])]
    assert kek.warnings(cfg) == [
        "crypto.recovery_public_key is not set: losing the station key loses every encrypted "
        "copy; set the agency's recovery key (docs/security.md)"
    ]  # and no "written in plaintext" warning: the sealed key counts
    from agent.cli.keys_crypto import cmd_encryption

    assert cmd_encryption(argparse.Namespace(action="show", json=True), cfg) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sealed"] is True and shown["key_file"] == str(syscreds.credential_path())
    assert shown["key_ids"] == [envelope.kek_id(ring[0]).hex()]
