"""`evidence-agent keys init|show` (issue 12, item 4): enrolment prints the fingerprint for the
fleet register; `show --pem` is the key to pin outside the data dir for `verify --pubkey`."""

from __future__ import annotations

import json

from agent.ledger import stationkey


def test_keys_init_show_and_pinning(make_station, tmp_path) -> None:  # type: ignore[no-untyped-def]
    station = make_station()
    init = station.cli("keys", "init", check=True)
    pub = stationkey.load_public(station.data_dir / "keys")
    assert pub is not None
    fp = stationkey.fingerprint(pub)
    assert f"key fingerprint {fp}" in init.stdout
    again = station.cli("keys", "init", check=True)  # never a replacement
    assert f"key fingerprint {fp}" in again.stdout
    pem = station.cli("keys", "show", "--pem", check=True).stdout
    assert pem.encode() == (station.data_dir / "keys" / "station.ed25519.pub").read_bytes()
    pinned = tmp_path / "station.pub"
    pinned.write_text(pem, encoding="utf-8")
    report = json.loads(station.cli("verify", "--json", "--pubkey", str(pinned)).stdout)
    assert report["ok"] and report["key_pinned"] and report["key_fingerprint"] == fp
    env = {"EVIDENCE_AGENT__CUSTODY__PUBKEY_FINGERPRINT": fp}
    shown = json.loads(station.cli("keys", "show", "--json", env=env, check=True).stdout)
    assert shown["fingerprint"] == fp and shown["matches_pin"] is True
    wrong = {"EVIDENCE_AGENT__CUSTODY__PUBKEY_FINGERPRINT": "sha256:" + "2" * 32}
    proc = station.cli("keys", "show", env=wrong)
    assert proc.returncode == 1 and "DIFFERS" in proc.stdout


def test_keys_show_without_a_key_says_what_to_do(make_station) -> None:  # type: ignore[no-untyped-def]
    station = make_station(ledger=False)
    proc = station.cli("keys", "show")
    assert proc.returncode != 0 and "keys init" in proc.stderr
