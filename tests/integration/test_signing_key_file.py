"""The custody signing key outside the data dir (issue 12 follow-up, "evidence you can defend").

`custody.signing_key_file` keeps the private Ed25519 key where a copy of the data dir does not
reach; `keys move-signing` moves an existing key there (same key, so a pinned public key keeps
verifying); `check-config` warns while the key sits in the data dir with encryption on.
"""

from __future__ import annotations

import json

from agent.ledger import stationkey
from fixtures.station import ledger_rows


def test_moved_signing_key_keeps_the_pin_and_signs_from_outside(station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY1420", clips=1, seconds=1.0)
    station.cli("ingest", str(vol), check=True)  # checkpoints signed by the key in keys/
    keys = station.data_dir / "keys"
    inside = keys / stationkey.KEY_FILE
    pem = inside.read_bytes()
    fp = stationkey.fingerprint(stationkey.load_public(keys))
    pinned = tmp_path / "enrolment.pub"
    pinned.write_bytes((keys / stationkey.PUB_FILE).read_bytes())
    outside = tmp_path / "etc-keys" / "signing.ed25519.pem"
    env = {"EVIDENCE_AGENT__CUSTODY__SIGNING_KEY_FILE": str(outside)}

    # Config changed first, key not moved yet: no silent new key, and the way out is named.
    refused = station.cli("ingest", str(vol), env=env)
    assert refused.returncode != 0 and "keys move-signing" in refused.stderr

    out = station.cli("keys", "move-signing", env=env, check=True).stdout
    assert f"signing key {fp} moved from {inside} to {outside}" in out
    assert outside.read_bytes() == pem and outside.stat().st_mode & 0o777 == 0o600
    assert not inside.exists()  # a copy of the data dir no longer carries the key
    assert stationkey.fingerprint(stationkey.load_public(keys)) == fp  # public key unchanged
    (ev,) = ledger_rows(station, "SELECT * FROM custody WHERE type='key.signing_moved'")
    doc = json.loads(ev["payload"])
    assert (doc["fingerprint"], doc["from"], doc["to"]) == (fp, str(inside), str(outside))
    again = station.cli("keys", "move-signing", env=env, check=True).stdout
    assert "already" in again and not inside.exists()

    shown = json.loads(station.cli("keys", "show", "--json", env=env, check=True).stdout)
    assert (shown["fingerprint"], shown["signing_key_file"]) == (fp, str(outside))
    vol2, _ = bodycam(serial="ZFY1421", clips=1, seconds=1.0)
    station.cli("ingest", str(vol2), env=env, check=True)  # signed with the key outside
    assert not inside.exists()  # and no new key was made in the data dir
    proc = station.cli("verify", "--json", "--pubkey", str(pinned), env=env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, report["problems"]
    assert report["key_pinned"] and report["key_fingerprint"] == fp

    # A rotation afterwards keeps the retired key next to the moved one, not in the data dir.
    rotated = station.cli("keys", "rotate", env=env, check=True).stdout
    assert f"{fp} -> " in rotated
    assert (outside.parent / "retired" / (fp.replace(":", "-") + ".pem")).read_bytes() == pem
    assert not inside.exists() and not (keys / "retired").exists()
    proc = station.cli("verify", "--json", "--pubkey", str(pinned), env=env)
    assert proc.returncode == 0, json.loads(proc.stdout)["problems"]


def test_check_config_warns_about_a_signing_key_in_the_data_dir(make_station, tmp_path) -> None:  # type: ignore[no-untyped-def]
    st = make_station(f'[crypto]\nkey_file = "{tmp_path / "etc-keys" / "encryption.key"}"\n')
    st.cli("keys", "init", check=True)
    quiet = st.cli("check-config", check=True)  # no encryption yet: only the plaintext warning
    assert "custody signing key" not in quiet.stderr
    st.cli("keys", "encryption", "init", check=True)
    warned = st.cli("check-config", check=True)
    inside = st.data_dir / "keys" / stationkey.KEY_FILE
    assert f"the custody signing key {inside} lies inside station.data_dir" in warned.stderr
    assert "keys move-signing" in warned.stderr
    env = {"EVIDENCE_AGENT__CUSTODY__SIGNING_KEY_FILE": str(tmp_path / "etc-keys" / "sig.pem")}
    # No checkpoint yet, but the enrolled key is in keys/: never a second key made elsewhere.
    refused = st.cli("keys", "init", env=env)
    assert refused.returncode != 0 and "keys move-signing" in refused.stderr
    assert not (tmp_path / "etc-keys" / "sig.pem").exists()
    st.cli("keys", "move-signing", env=env, check=True)
    moved = st.cli("check-config", env=env, check=True)
    assert "custody signing key" not in moved.stderr
    # A signing_key_file inside the data dir is refused by the move.
    bad = {"EVIDENCE_AGENT__CUSTODY__SIGNING_KEY_FILE": str(st.data_dir / "elsewhere.pem")}
    proc = st.cli("keys", "move-signing", env=bad)
    assert proc.returncode != 0 and "inside station.data_dir" in proc.stderr
