"""crypto.suite = "sm" (国密, issue 19 item 4): ingest seals spool copies with SM4-GCM (suite
byte 2) and records an SM3 digest next to SHA-256 that matches `openssl dgst -sm3` of the same
file; status --json and the export manifest show it; a station back on "intl" still reads them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from fixtures.station import ledger_rows
from toolcheck import require_tool

SUITE_BYTE = 9  # agent.core.envelope: magic (8), version (1), then the suite byte


def _openssl_sm3(path: Path) -> str:
    out = subprocess.run([require_tool("openssl"), "dgst", "-sm3", "-r", str(path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()[0]


def _openssl_sm2_verifies(doc: dict, tmp: Path) -> bool:
    """The manifest's SM2 signature checked by the OpenSSL command line (docs/security.md)."""
    signed = {k: v for k, v in doc.items() if k not in ("signature", "sm2_signature")}
    msg = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    (tmp / "m.json").write_bytes(msg.encode("utf-8"))
    (tmp / "m.sig").write_bytes(bytes.fromhex(doc["sm2_signature"]))
    (tmp / "sm2.pub").write_text(doc["sm2_public_key"])
    cmd = [require_tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp / "sm2.pub"),
           "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
           "-in", str(tmp / "m.json"), "-sigfile", str(tmp / "m.sig")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True)
    return out.returncode == 0 and "Verified Successfully" in out.stdout


def test_sm_suite_records_sm3_and_seals_sm4(make_station, tmp_path, bodycam):
    key = tmp_path / "etc-keys" / "encryption.key"
    cfg = f'[crypto]\nsuite = "sm"\nencrypt = "required"\nkey_file = "{key}"\n'
    st = make_station(cfg)
    st.cli("keys", "encryption", "init", check=True)
    vol, clips = bodycam(serial="ZFY1901", clips=2, seconds=1.0)
    st.cli("ingest", str(vol), check=True)
    rows = ledger_rows(st, "SELECT id, sha256, sm3, spool_path, source_path FROM recordings")
    assert len(rows) == 2
    want = {c.name: _openssl_sm3(c) for c in clips}
    for r in rows:
        assert r["sm3"] == want[Path(r["source_path"]).name]
        copy = st.data_dir / "spool" / r["spool_path"]
        assert copy.read_bytes()[SUITE_BYTE] == 2  # SM4-GCM chunks
    custody = ledger_rows(st, "SELECT payload FROM custody WHERE type = 'recording.spooled'")
    sealed = [json.loads(c["payload"]) for c in custody]
    assert {p["encrypted"]["suite"] for p in sealed} == {"sm4-gcm"}
    assert {p["sm3"] for p in sealed} == set(want.values())
    status = json.loads(st.cli("status", "--json", check=True).stdout)
    assert {r["sm3"] for r in status["recordings"]} == set(want.values())
    out = tmp_path / "export"
    ids = [r["id"] for r in rows]
    st.cli("export", *ids, "--to", str(out), "--reason", "复议", "--operator", "OP1", check=True)
    (manifest,) = out.glob("manifest-*.json")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    assert {i["sm3"] for i in doc["recordings"]} == set(want.values())
    assert _openssl_sm2_verifies(doc, tmp_path), "OpenSSL rejects the manifest's SM2 signature"
    doc["reason"] = "altered"
    assert not _openssl_sm2_verifies(doc, tmp_path)
    assert sorted(p.read_bytes() for p in out.iterdir() if p.name.startswith(tuple(ids))) == sorted(
        c.read_bytes() for c in clips
    )
    # Back on the default suite, the SM4 copies still verify (the header names the cipher).
    st.config_path.write_text(st.config_path.read_text().replace('suite = "sm"', 'suite = "intl"'))
    assert st.cli("verify").returncode == 0


def test_check_config_warns_when_bays_exceed_sm4(make_station, tmp_path):
    from agent.config.smbays import sm_bays

    key = tmp_path / "etc-keys" / "encryption.key"
    crypto = f'[crypto]\nkey_file = "{key}"\n'
    too_many = sm_bays() + 1
    over = make_station(f'max_parallel = {too_many}\n{crypto}suite = "sm"\n', name="over")
    out = over.cli("check-config")
    assert out.returncode == 0, out.stderr
    assert f"ingest.max_parallel = {too_many} exceeds the {sm_bays()} USB 2.0 bay" in out.stderr
    fits = make_station(f'max_parallel = {sm_bays()}\n{crypto}suite = "sm"\n', name="fits")
    assert "ingest.max_parallel" not in fits.cli("check-config").stderr
    intl = make_station(f"max_parallel = {too_many}\n{crypto}", name="intl")
    assert "ingest.max_parallel" not in intl.cli("check-config").stderr


def test_daemon_export_manifest_is_sm2_signed(unix_users, bodycam):
    """The export the daemon's API runs for an operator (agent/daemon/api_export.py)."""
    import shutil
    import tempfile

    from fixtures.access import HEADER, Gate, open_station

    unix_users.add("smcus")
    register = HEADER + f"C001,{unix_users.prefix}smcus,王五,保管员,JZ-C001,1\n"
    base = Path(tempfile.mkdtemp(prefix="eat-sm-"))
    extra = '[access]\ntwo_person_rule = false\n[crypto]\nsuite = "sm"\nencrypt = "off"\n'
    st = open_station(base, register, group=unix_users.group, extra=extra)
    try:
        vol, clips = bodycam(serial="ZFY1902", clips=1, seconds=1.0)
        st.cli("ingest", str(vol), check=True)
        (rid,) = [r["id"] for r in ledger_rows(st, "SELECT id FROM recordings")]
        st.gates.append(Gate(st).start())
        out = st.dir / "out"
        out.mkdir()
        os.chown(out, unix_users.names[f"{unix_users.prefix}smcus"], unix_users.gid)
        done = unix_users.cli(f"{unix_users.prefix}smcus", st, "export", rid, "--to", str(out),
                              "--reason", "复议调阅", "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        doc = json.loads(Path(json.loads(done.stdout)["manifest"]).read_text(encoding="utf-8"))
        assert doc["recordings"][0]["sm3"] == _openssl_sm3(clips[0])
        assert _openssl_sm2_verifies(doc, base)
    finally:
        for gate in st.gates:
            gate.close()
        shutil.rmtree(base, ignore_errors=True)
