"""Rotating and recovering a sealed station key (issue 19): with the real systemd-creds, as
root, `keys encryption rotate` re-wraps every copy (ciphertext bodies unchanged) and seals the
new ring into the same credential, never a plaintext key file; `recover` with the recovery key
on a station whose credential was lost seals a new key; `verify` passes with each."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from fixtures.station import ledger_rows
from toolcheck import require_tool, unavailable

NAME = "evidence-agent-encryption-key"


def _decrypt(cred: Path) -> str:
    tool = require_tool("systemd-creds")
    done = subprocess.run([tool, "decrypt", f"--name={NAME}", str(cred), "-"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _ids(text: str) -> list[str]:
    from agent.core import envelope
    from agent.station import kek

    return [envelope.kek_id(k).hex() for k in kek.parse_ring(text, Path("sealed"))]


def _creds_env(tmp_path: Path, cred: Path) -> dict[str, str]:
    """What PID 1 does for LoadCredentialEncrypted= (a private dir with the decrypted key)."""
    creds = tmp_path / "run-credentials"
    shutil.rmtree(creds, ignore_errors=True)
    creds.mkdir(mode=0o700)
    (creds / NAME).write_text(_decrypt(cred))
    return {"CREDENTIALS_DIRECTORY": str(creds)}


def _sealed_station(make_station, tmp_path, bodycam):  # type: ignore[no-untyped-def]
    require_tool("systemd-creds")
    from agent.station import kek

    if os.geteuid() != 0:
        unavailable("sealing with the host key needs root")
    _, pub = kek.new_recovery_pair(tmp_path / "agency")
    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(
        f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\nrecovery_public_key = "{pub}"\n'
    )
    store = tmp_path / "credstore.encrypted"
    st.cli("keys", "encryption", "init", "--systemd-creds", "--credstore", str(store), check=True)
    cred = store / NAME
    vol, _ = bodycam(serial="ZFY2101", clips=2, seconds=0.5)
    st.cli("ingest", str(vol), env=_creds_env(tmp_path, cred), check=True)
    shutil.rmtree(tmp_path / "run-credentials")
    return st, cred, key


def _spool(st) -> dict[str, tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """recording id -> (key id, header hash, body hash) of its spool copy."""
    from agent.core.envelope import HEADER_SIZE
    from agent.ledger import paths

    out = {}
    for r in ledger_rows(st, "SELECT id, spool_path, spool_key_id FROM recordings"):
        path = paths.spool_file(st.cfg(), r["spool_path"])
        assert path is not None
        data = path.read_bytes()
        head, body = data[:HEADER_SIZE], data[HEADER_SIZE:]
        out[str(r["id"])] = (
            r["spool_key_id"],
            hashlib.sha256(head).hexdigest(),
            hashlib.sha256(body).hexdigest(),
        )
    return out


def _no_plaintext_key(tmp_path: Path, ring_text: str) -> None:
    secrets = [ln.split()[1].encode() for ln in ring_text.splitlines() if ln.startswith("kek ")]
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(s in data for s in secrets), f"plaintext station key in {path}"


def test_rotate_a_sealed_key_rewraps_and_seals_the_new_ring(make_station, tmp_path, bodycam):
    st, cred, key = _sealed_station(make_station, tmp_path, bodycam)
    (old,) = _ids(_decrypt(cred))
    before = _spool(st)
    assert len(before) == 2 and {v[0] for v in before.values()} == {old}

    from agent.station.ownership import DaemonLock

    cfg = st.cfg()
    held = DaemonLock(cfg.locks_dir, cfg.station.data_dir)  # as a running daemon does
    held.acquire()
    try:
        busy = st.cli("keys", "encryption", "rotate", "--credstore", str(cred.parent))
    finally:
        held.release()
    assert busy.returncode == 75 and "stop it first" in busy.stderr
    assert _ids(_decrypt(cred)) == [old]  # nothing sealed while the daemon holds the key

    done = st.cli("keys", "encryption", "rotate", "--credstore", str(cred.parent))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 spool copies" in done.stdout and f"sealed in {cred}" in done.stdout
    ring = _decrypt(cred)
    (new,) = _ids(ring)  # the old key dropped once every copy is re-wrapped
    assert new != old
    after = _spool(st)
    for rid, (kid, head, body) in after.items():
        assert kid == new and head != before[rid][1]
        assert body == before[rid][2]  # footage bytes untouched
    (event,) = ledger_rows(st, "SELECT payload FROM custody WHERE type = 'crypto.key_rotated'")
    assert json.loads(event["payload"])["key"] == new
    assert json.loads(event["payload"])["old"] == [old]
    assert not key.exists() and not key.parent.exists()
    assert cred.stat().st_mode & 0o777 == 0o600
    assert not [p for p in cred.parent.iterdir() if p.name != NAME]  # no temp left
    _no_plaintext_key(tmp_path, ring)
    env = _creds_env(tmp_path, cred)
    verify = st.cli("verify", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_recover_a_lost_sealed_key_seals_a_new_one(make_station, tmp_path, bodycam):
    st, cred, key = _sealed_station(make_station, tmp_path, bodycam)
    (old,) = _ids(_decrypt(cred))
    before = _spool(st)
    cred.unlink()  # the credential is lost (a new TPM2, a reinstalled /etc)
    assert st.cli("verify").returncode != 0

    rkey = str(tmp_path / "agency" / "recovery.key")
    done = st.cli("keys", "encryption", "recover", "--systemd-creds", "--credstore",
                  str(cred.parent), "--recovery-key", rkey)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ring = _decrypt(cred)
    (new,) = _ids(ring)
    assert new != old
    for rid, (kid, _, body) in _spool(st).items():
        assert kid == new and body == before[rid][2]
    (event,) = ledger_rows(st, "SELECT payload FROM custody WHERE type = 'crypto.recovered'")
    assert json.loads(event["payload"])["key"] == new
    assert not key.exists()
    _no_plaintext_key(tmp_path, ring)
    verify = st.cli("verify", env=_creds_env(tmp_path, cred))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_rotate_as_root_rewraps_as_the_data_dirs_owner(unix_users, bodycam):  # type: ignore[no-untyped-def]
    """`sudo evidence-agent keys encryption rotate` on a station whose data dir belongs to the
    service user: the credential is handled as root, the ledger and the copies stay the
    owner's (the re-wrapping runs in a child that dropped root for good)."""
    require_tool("systemd-creds")
    import tempfile

    from agent.station import kek
    from fixtures.access import _interpreter, open_station

    owner = unix_users.add("rot")
    uid = unix_users.names[owner]
    base = Path(tempfile.mkdtemp(prefix="eat-rot-"))
    try:
        _, pub = kek.new_recovery_pair(base / "agency")
        os.chmod(base / "agency", 0o755)
        key = base / "etc-keys" / "encryption.key"
        toml = (
            f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\nrecovery_public_key = "{pub}"\n'
        )
        st = open_station(base, None, group=unix_users.group, extra=toml)
        store = base / "credstore.encrypted"
        st.cli("keys", "encryption", "init", "--systemd-creds", "--credstore", str(store),
               check=True)  # fmt: skip
        cred = store / NAME
        vol, _ = bodycam(serial="ZFY2102", clips=1, seconds=0.5)
        st.cli("ingest", str(vol), env=_creds_env(base, cred), check=True)
        shutil.rmtree(base / "run-credentials")
        for path in [st.data_dir, *st.data_dir.rglob("*")]:
            os.chown(path, uid, unix_users.gid, follow_symlinks=False)

        # As root, with a Python the owner may still read once root is dropped (as in a real
        # install; the test venv may live under /root: fixtures.access._interpreter).
        python, path = _interpreter()
        env = {**os.environ, **({"PYTHONPATH": path} if path else {})}
        env.pop("EVIDENCE_AGENT_CONFIG", None)
        done = subprocess.run(
            [python, "-m", "agent", "--config", str(st.config_path), "keys", "encryption",
             "rotate", "--credstore", str(store)],
            capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).parents[2],
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        (new,) = _ids(_decrypt(cred))
        assert [
            r["spool_key_id"] for r in ledger_rows(st, "SELECT spool_key_id FROM recordings")
        ] == [new]
        assert ledger_rows(st, "SELECT seq FROM custody WHERE type = 'crypto.key_rotated'")
        root_owned = [p for p in st.data_dir.rglob("*") if p.lstat().st_uid != uid]
        assert root_owned == []
        assert cred.stat().st_uid == 0 and cred.stat().st_mode & 0o777 == 0o600
    finally:
        shutil.rmtree(base, ignore_errors=True)
