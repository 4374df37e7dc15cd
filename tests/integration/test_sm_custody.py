"""The custody chain under crypto.suite = "sm" (issue 19, item 4), checked with the OpenSSL
command line as the independent implementation: each SM3 chain value is `openssl dgst -sm3` of
the event's canonical bytes, each SM2 checkpoint signature verifies with `openssl pkeyutl`,
a station that ran under "intl" first keeps a valid chain, and an altered SM3 value fails
`verify` naming the event."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from fixtures.station import ledger_rows
from toolcheck import require_tool

GUARD = (
    "CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody\nBEGIN\n"
    "    SELECT RAISE(ABORT, 'custody is append-only: record a new event instead');\nEND"
)


def _canonical(row: dict, prev: str) -> bytes:
    body = {"seq": row["seq"], "at": row["at"], "type": row["type"],
            "recording_id": row["recording_id"], "actor": row["actor"],
            "payload": json.loads(row["payload"]), "alg": "sm3", "prev": prev}  # fmt: skip
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _openssl_sm3(data: bytes) -> str:
    out = subprocess.run([require_tool("openssl"), "dgst", "-sm3", "-r"], input=data,
                         capture_output=True, check=True).stdout  # fmt: skip
    return out.split()[0].decode()


def _openssl_sm2_verifies(statement: str, sig_hex: str, pem: str, tmp: Path) -> bool:
    (tmp / "st.json").write_bytes(statement.encode("utf-8"))
    (tmp / "st.sig").write_bytes(bytes.fromhex(sig_hex))
    (tmp / "sm2.pub").write_text(pem)
    cmd = [require_tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp / "sm2.pub"),
           "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
           "-in", str(tmp / "st.json"), "-sigfile", str(tmp / "st.sig")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    return out.returncode == 0 and "Verified Successfully" in out.stdout


def test_sm3_chain_and_sm2_checkpoints_against_openssl(make_station, tmp_path, bodycam):
    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\n')
    st.cli("keys", "encryption", "init", check=True)
    vol, _ = bodycam(serial="ZFY1901", clips=1, seconds=0.5)
    st.cli("ingest", str(vol), check=True)  # under "intl": SHA-256 only
    before = ledger_rows(st, "SELECT MAX(seq) AS n FROM custody")[0]["n"]
    st.config_path.write_text(st.config_path.read_text().replace("[crypto]\n",
                              '[crypto]\nsuite = "sm"\n'))  # fmt: skip
    vol2, _ = bodycam(serial="ZFY1902", clips=2, seconds=0.5)
    st.cli("ingest", str(vol2), check=True)

    rows = ledger_rows(st, "SELECT * FROM custody ORDER BY seq")
    assert all(r["sm3"] is None for r in rows[:before])  # the old chain is left as it was
    switch = rows[before]
    assert switch["type"] == "crypto.suite_changed"
    assert json.loads(switch["payload"])["suite"] == "sm"
    prev = "0" * 64
    for r in rows[before:]:
        assert r["sm3"] == _openssl_sm3(_canonical(r, prev)), f"event {r['seq']}"
        prev = r["sm3"]

    (cp,) = ledger_rows(st, "SELECT * FROM checkpoints WHERE sm2_signature IS NOT NULL")
    statement = json.loads(cp["statement"])
    assert statement["head_sm3"] == rows[-1]["sm3"] and statement["head_seq"] == rows[-1]["seq"]
    pem, sig = cp["sm2_public_key"], cp["sm2_signature"]
    assert _openssl_sm2_verifies(cp["statement"], sig, pem, tmp_path), "OpenSSL rejects SM2"
    assert not _openssl_sm2_verifies(cp["statement"] + " ", sig, pem, tmp_path)  # one byte more

    done = st.cli("verify", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["sm3_from"] == switch["seq"]
    assert report["sm3_events"] == len(rows) - before
    assert report["sm2_checkpoints"] == 1
    text = st.cli("verify").stdout
    assert f"SM3 chain: {len(rows) - before} events checked" in text

    # An altered SM3 value (the SHA-256 chain untouched, the guard put back) fails verify.
    victim = rows[before + 1]["seq"]
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER custody_no_update")
    conn.execute("UPDATE custody SET sm3 = ? WHERE seq = ?", ("0" * 64, victim))
    conn.execute(GUARD)
    conn.close()
    bad = st.cli("verify")
    assert bad.returncode != 0
    assert f"event {victim}" in bad.stdout + bad.stderr
    assert "SM3 mismatch" in bad.stdout + bad.stderr


def test_daemon_cosigns_its_checkpoints_with_sm2(make_station, tmp_path):
    """The daemon's own checkpoint (the final one at SIGTERM) under "sm": SM2 by the station
    SM2 key it makes in keys_dir, and verify counts it."""
    import signal
    import socket

    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(f'[crypto]\nsuite = "sm"\nkey_file = "{key}"\n')
    st.cli("keys", "encryption", "init", check=True)
    sock_path = st.dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    proc = st.popen("run", env={"NOTIFY_SOCKET": str(sock_path)})
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
    finally:
        sock.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        err = proc.communicate()[1]
    assert rc == 0, err
    last = ledger_rows(st, "SELECT * FROM checkpoints ORDER BY seq DESC LIMIT 1")[0]
    assert last["sm2_signature"] and json.loads(last["statement"])["sm2_key"].startswith("sm3:")
    assert _openssl_sm2_verifies(last["statement"], last["sm2_signature"],
                                 last["sm2_public_key"], tmp_path)  # fmt: skip
    report = json.loads(st.cli("verify", "--json").stdout)
    assert report["ok"] and report["sm2_checkpoints"] >= 1 and report["sm3_from"] == 1


def test_archived_anchor_holds_the_sm3_head(make_station, tmp_path, bodycam):
    """The checkpoint statement archived write-once outside the ledger names the SM3 head:
    an SM3 value rewritten in the ledger is caught against it as well."""
    from agent.archive.archiver import Archiver
    from agent.ledger import custody
    from fixtures.archive import ingest_volume

    st = make_station('[crypto]\nsuite = "sm"\nencrypt = "off"\n')
    ctx = st.context()
    vol, _ = bodycam(serial="ZFY1903", clips=1, seconds=0.5)
    ingest_volume(ctx, vol)
    with ctx.ledger.tx() as conn:
        cp = custody.checkpoint(conn, ctx.key, ctx.station_id, ctx.sm2)
    Archiver(ctx).maintain(force=True)
    head = cp["statement"]["head_seq"]
    assert cp["statement"]["head_sm3"]
    ctx.close()
    assert st.cli("verify").returncode == 0
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER custody_no_update")
    conn.execute("UPDATE custody SET sm3 = ? WHERE seq = ?", ("1" * 64, head))
    conn.execute(GUARD)
    conn.close()
    bad = st.cli("verify")
    assert bad.returncode != 0
    assert f"rewrite: event {head} in the local chain has SM3 value {'1' * 64}" in bad.stdout
