"""The gate with real Unix users: who may tag, decide, export and read the audit trail.

Users and a group are created with a per-run prefix and removed at teardown; each CLI runs
in a child that did setgroups/setgid/setuid (subprocess user=/group=/extra_groups=). The
daemon's API server (agent.daemon.api) runs in this process on the station's socket.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path

import pytest

from fixtures.access import HEADER, Gate, open_station


def _custody(st, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM custody WHERE type=? ORDER BY seq", (type_,))
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def users(unix_users):  # type: ignore[no-untyped-def]
    for short in ("off1", "off2", "cus", "sup", "nobody"):
        unix_users.add(short)
    return unix_users


@pytest.fixture
def docked(users, bodycam):  # type: ignore[no-untyped-def]
    """A station with one recorder worn by officer 100001 ingested, and its gate running."""
    p = users.prefix
    register = HEADER + (
        f"100001,{p}off1,张三,officer,JZ-100001,1\n"
        f"100002,{p}off2,李四,officer,JZ-100002,1\n"
        f"C001,{p}cus,王五,保管员,JZ-C001,1\n"
        f"S001,{p}sup,赵六,supervisor,JZ-S001,1\n"
    )
    base = Path(tempfile.mkdtemp(prefix="eat-st-"))
    # One-step exports here; the two-person rule: tests/integration/test_retrieval.py
    st = open_station(
        base, register, group=users.group, extra="[access]\ntwo_person_rule = false\n"
    )
    vol, _ = bodycam(serial="ZFY0001", officer="100001", clips=2)
    ingest = st.cli("ingest", str(vol), "--json", check=True)
    assert json.loads(ingest.stdout)["copied"] == 2
    ids = [r["id"] for r in json.loads(st.cli("status", "--json", check=True).stdout)["recordings"]]
    st.gates.append(Gate(st).start())
    yield st, ids
    for gate in st.gates:
        gate.close()
    import shutil

    shutil.rmtree(base, ignore_errors=True)


def test_officer_tags_own_recordings_only_and_every_decision_is_in_custody(users, docked):  # type: ignore[no-untyped-def]
    st, ids = docked
    p = users.prefix
    own = users.cli(f"{p}off1", st, "tag", ids[0], "--proves", "现场检查")
    assert own.returncode == 0, own.stderr
    other = users.cli(f"{p}off2", st, "tag", ids[0], "--proves", "冒名")
    assert other.returncode == 77
    assert "only own recordings" in other.stderr and ids[0] in other.stderr
    typed = users.cli(f"{p}off1", st, "tag", ids[1], "--proves", "x", "--operator", "C001")
    assert typed.returncode == 77 and "is not you" in typed.stderr
    stranger = users.cli(f"{p}nobody", st, "tag", ids[1], "--proves", "x")
    assert stranger.returncode == 77 and "not in the operator register" in stranger.stderr

    shown = json.loads(st.cli("tag", "--show", ids[0], "--json", check=True).stdout)
    assert shown["metadata"]["proves"] == "现场检查"
    assert shown["metadata_history"][-1]["actor"] == "100001"
    granted = _custody(st, "access.granted")
    assert [
        (g["payload"]["operator"], g["payload"]["via"], g["payload"]["action"]) for g in granted
    ] == [("100001", "cli", "tag")]
    assert granted[0]["payload"]["uid"] == users.names[f"{p}off1"]
    refused = [r["payload"] for r in _custody(st, "access.refused")]
    assert [(r["operator"], r["typed_operator"]) for r in refused] == [
        ("100002", None), ("100001", "C001"), (None, None)
    ]  # fmt: skip
    assert refused[2]["login"] == f"{p}nobody" and refused[2]["uid"] == users.names[f"{p}nobody"]


def test_root_without_an_operator_record_is_refused(users, docked):  # type: ignore[no-untyped-def]
    st, ids = docked
    r = st.cli("tag", ids[0], "--proves", "x")
    assert r.returncode == 77 and "uid 0 (root) is not in the operator register" in r.stderr
    r = st.cli("accept", ids[0], "--reason", "x")
    assert r.returncode == 77
    assert [x["payload"]["uid"] for x in _custody(st, "access.refused")] == [0, 0]


def test_custodian_exports_as_itself_officer_may_not(users, docked):  # type: ignore[no-untyped-def]
    st, ids = docked
    p = users.prefix
    out = st.dir / "out"
    out.mkdir()
    os.chown(out, users.names[f"{p}cus"], users.gid)
    refused = users.cli(f"{p}off1", st, "export", ids[0], "--to", str(out), "--reason", "复核")
    assert refused.returncode == 77 and "may not export" in refused.stderr
    done = users.cli(
        f"{p}cus", st, "export", *ids, "--to", str(out), "--reason", "复议调阅", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(e["recording_id"] for e in result["exported"]) == sorted(ids)
    files = sorted(out.iterdir())
    # Written by the client as the custodian, not by the daemon (root here).
    assert {f.stat().st_uid for f in files} == {users.names[f"{p}cus"]}
    manifest = json.loads(Path(result["manifest"]).read_text(encoding="utf-8"))
    assert manifest["operator"] == "C001" and manifest["cert_no"] == "JZ-C001"
    assert {r["id"] for r in manifest["recordings"]} == set(ids)
    exported = _custody(st, "recording.exported")
    assert {(e["recording_id"], e["actor"]) for e in exported} == {(i, "C001") for i in ids}
    assert len(_custody(st, "export.started")) == 2
    verify = st.cli("verify")
    assert verify.returncode == 0, verify.stdout


def test_an_operator_process_cannot_write_the_ledger_or_read_the_station_key(users, docked):  # type: ignore[no-untyped-def]
    st, _ = docked
    probe = (
        "import sqlite3, sys\n"
        "for path, mode in ((sys.argv[1], 'r+b'), (sys.argv[2], 'rb')):\n"
        "    try:\n"
        "        open(path, mode).close(); print('OPENED', path)\n"
        "    except PermissionError: print('DENIED', path)\n"
        "try:\n"
        "    c = sqlite3.connect(sys.argv[1]); c.execute('BEGIN IMMEDIATE'); print('WROTE')\n"
        "except sqlite3.Error as e: print('DENIED sqlite', e)\n"
    )
    key = st.data_dir / "keys" / "station.ed25519.pem"
    ledger = st.data_dir / "ledger.sqlite3"
    assert key.exists() and ledger.exists()
    r = users.run(f"{users.prefix}off1", "-c", probe, str(ledger), str(key))
    assert r.stdout.splitlines()[:2] == [f"DENIED {ledger}", f"DENIED {key}"], r.stdout + r.stderr
    assert "WROTE" not in r.stdout and "DENIED sqlite" in r.stdout


def test_supervisor_reads_the_audit_officer_may_not_and_reading_is_recorded(users, docked):  # type: ignore[no-untyped-def]
    st, ids = docked
    p = users.prefix
    assert users.cli(f"{p}off1", st, "tag", ids[0], "--case-number", "C-1").returncode == 0
    assert users.cli(f"{p}off2", st, "tag", ids[0], "--case-number", "C-2").returncode == 77
    r = users.cli(f"{p}sup", st, "audit", "--recording", ids[0], "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    codes = [e["type"] for e in doc["events"]]
    assert "recording.spooled" in codes and "access.refused" in codes
    refused = next(e for e in doc["events"] if e["type"] == "access.refused")
    assert (refused["operator"], refused["operator_name"], refused["cert_no"]) == (
        "100002", "李四", "JZ-100002"
    )  # fmt: skip
    zh = users.cli(f"{p}sup", st, "audit", "--operator", "100001", "--csv", "--lang", "zh")
    assert zh.returncode == 0, zh.stderr
    lines = zh.stdout.splitlines()
    assert lines[0].lstrip("\ufeff").startswith("序号,时间（本站）,事件代码,说明,操作员,执法证号")
    tagged = next(ln for ln in lines if ",metadata.tagged," in ln)
    assert "张三 标注了案件信息（第 1 版）,张三,JZ-100001" in tagged and "+08:00" in tagged
    assert any(",access.granted,张三 经 cli 获准执行 tag," in ln for ln in lines)
    assert not any(",access.refused," in ln for ln in lines)  # that was 100002
    denied = users.cli(f"{p}off2", st, "audit", "--kind", "recording.")
    assert denied.returncode == 77
    reads = [
        g["payload"] for g in _custody(st, "access.granted") if g["payload"]["action"] == "audit"
    ]
    assert [g["operator"] for g in reads] == ["S001", "S001"]


def test_audit_html_report_shows_every_event_hash_and_covering_checkpoint(users, docked, tmp_path):  # type: ignore[no-untyped-def]
    st, ids = docked
    assert users.cli(f"{users.prefix}off1", st, "tag", ids[0], "--proves", "现场").returncode == 0
    ctx = st.context()
    from agent.ledger import custody

    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)
    rows = ctx.ledger.query(
        "SELECT type, hash FROM custody WHERE recording_id = ?"
        " OR EXISTS (SELECT 1 FROM json_each(payload, '$.recordings') WHERE value = ?)",
        (ids[0], ids[0]),
    )
    out = tmp_path / "audit.html"
    r = st.cli("audit", "--recording", ids[0], "--html", str(out), "--lang", "zh")
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert len(rows) >= 4
    for row in rows:
        assert row["type"] in page and row["hash"] in page
    sha = ctx.ledger.one("SELECT sha256 FROM recordings WHERE id=?", (ids[0],))[0]
    assert sha in page and "签名检查点" in page and "signature (ed25519)" in page
    # Root read it directly: recorded as its uid.
    reads = _custody(st, "audit.read")
    assert reads[-1]["actor"] == "uid:0" and reads[-1]["payload"]["recordings"] == [ids[0]]


def test_no_register_or_a_broken_one_refuses_gated_actions_and_raises_an_alarm(users, bodycam):  # type: ignore[no-untyped-def]
    import shutil

    base = Path(tempfile.mkdtemp(prefix="eat-st-"))
    try:
        st = open_station(base, None, group=users.group)
        vol, _ = bodycam(serial="ZFY0002", clips=1)
        st.cli("ingest", str(vol), check=True)
        rid = json.loads(st.cli("status", "--json").stdout)["recordings"][0]["id"]
        gate = Gate(st).start()
        try:
            r = st.cli("tag", rid, "--proves", "x")
            assert r.returncode == 77 and "operators.file" in r.stderr
        finally:
            gate.close()
        reg = base / "operators.csv"
        reg.write_text(HEADER + "root,root,管理员,custodian;boss,JZ-1,1\n", encoding="utf-8")
        with open(st.config_path, "a", encoding="utf-8") as f:
            f.write(f'\n[operators]\nfile = "{reg}"\n')
        gate = Gate(st).start()
        try:
            r = st.cli("tag", rid, "--proves", "x")
            assert r.returncode == 77
            assert f"{reg}: line 2, column 'roles'" in r.stderr and "'boss'" in r.stderr
            reg.write_text(HEADER + "root,root,管理员,custodian,JZ-1,1\n", encoding="utf-8")
            assert st.cli("tag", rid, "--proves", "x").returncode == 0
        finally:
            gate.close()
        assert len(_custody(st, "operators.invalid")) == 1
        assert _custody(st, "operators.changed")[-1]["payload"]["added"] == ["root"]
        conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
        alarms = conn.execute("SELECT COUNT(*) FROM outbox WHERE type='access.register_invalid'")
        assert alarms.fetchone()[0] == 1
        conn.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_data_dir_shared_with_the_gates_group_loses_its_group_bits(users, docked):  # type: ignore[no-untyped-def]
    # Under systemd the service user's group is often `evidence`, the socket's group too: the
    # gate must not leave operators a way into the ledger through the data dir's group.
    st, _ = docked
    os.chown(st.data_dir, 0, users.gid)
    os.chmod(st.data_dir, 0o750)
    ledger = st.data_dir / "ledger.sqlite3"
    os.chown(ledger, 0, users.gid)
    os.chmod(ledger, 0o640)
    probe = (
        "import sys\ntry: open(sys.argv[1], 'rb').close(); print('READ')\n"
        "except PermissionError: print('DENIED')\n"
    )
    before = users.run(f"{users.prefix}off1", "-c", probe, str(ledger))
    assert before.stdout.strip() == "READ"  # the hole this closes
    st.gates[0].close()
    gate = Gate(st).start()
    try:
        assert st.data_dir.stat().st_mode & 0o777 == 0o700
        after = users.run(f"{users.prefix}off1", "-c", probe, str(ledger))
        assert after.stdout.strip() == "DENIED"
        assert (
            users.cli(f"{users.prefix}cus", st, "accept", "0" * 12, "--reason", "x").returncode == 1
        )
    finally:
        gate.close()
