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


def test_rotation_is_handed_over_and_verify_follows_it_from_the_pinned_key(
    station, bodycam, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.ledger import handover

    vol, _ = bodycam(serial="ZFY1410", clips=1, seconds=1.0)
    station.cli("ingest", str(vol), check=True)  # checkpoints signed by the enrolment key
    keys = station.data_dir / "keys"
    old_fp = stationkey.fingerprint(stationkey.load_public(keys))
    pinned = tmp_path / "enrolment.pub"
    pinned.write_bytes((keys / "station.ed25519.pub").read_bytes())
    out = station.cli("keys", "rotate", check=True).stdout
    new_fp = stationkey.fingerprint(stationkey.load_public(keys))
    assert new_fp != old_fp and f"{old_fp} -> {new_fp}" in out
    assert (keys / "retired" / (old_fp.replace(":", "-") + ".pem")).exists()  # kept
    assert not (keys / handover.NEXT_FILE).exists()
    vol2, _ = bodycam(serial="ZFY1411", clips=1, seconds=1.0)
    station.cli("ingest", str(vol2), check=True)  # checkpoints signed by the new key
    for args, env in (
        (("--pubkey", str(pinned)), None),
        ((), {"EVIDENCE_AGENT__CUSTODY__PUBKEY_FINGERPRINT": old_fp}),
        ((), None),
    ):
        proc = station.cli("verify", "--json", *args, env=env)
        if env:
            shown = json.loads(station.cli("keys", "show", "--json", env=env).stdout)
            assert shown["matches_pin"] is True and shown["fingerprint"] == new_fp
        report = json.loads(proc.stdout)
        assert proc.returncode == 0, (args, env, report["problems"])
    # A "hand-over" appended by someone holding only a planted key is not followed.
    ctx = station.context()
    planted, forged_new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    with ctx.ledger.tx() as conn:
        handover.record(conn, planted, forged_new, ctx.station_id)
    proc = station.cli("verify", "--json", "--pubkey", str(pinned))
    problems = json.loads(proc.stdout)["problems"]
    assert proc.returncode == 1
    assert any(p["kind"] == "key" and "hand-over" in p["message"] for p in problems), problems


def test_an_interrupted_rotation_is_finished_or_dropped(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.ledger import handover

    vol, _ = bodycam(serial="ZFY1412", clips=1, seconds=1.0)
    station.cli("ingest", str(vol), check=True)
    keys = station.data_dir / "keys"
    ctx = station.context()
    old = ctx.key
    # Crash before the hand-over committed: the waiting key is dropped, the old one stays.
    handover.write_next(keys, Ed25519PrivateKey.generate())
    assert station.context().key.public_key() == old.public_key()
    assert not (keys / handover.NEXT_FILE).exists()
    # Crash after it committed: the swap is finished before the key is used.
    new = Ed25519PrivateKey.generate()
    handover.write_next(keys, new)
    with ctx.ledger.tx() as conn:
        handover.record(conn, old, new, ctx.station_id)
    assert station.context().key.public_key() == new.public_key()
    assert stationkey.fingerprint(stationkey.load_public(keys)) == stationkey.fingerprint(
        new.public_key()
    )
    assert station.cli("verify").returncode == 0
