"""Supervised retrieval (调阅) with real Unix users: request -> approval -> one run -> return.

Each CLI runs as a real user (fixtures.access: setgroups/setgid/setuid in the child); the
daemon's gate runs in this process on the station's socket. The approval window is set by
config (`access.approval_window_hours`), never by sleeping.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fixtures.access import HEADER, Gate, open_station
from fixtures.station import ROOT


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
    for short in ("cus", "cus2", "sup", "cs", "off"):
        unix_users.add(short)
    return unix_users


@pytest.fixture
def make(users, bodycam):  # type: ignore[no-untyped-def]
    """make(access_toml) -> (station, recording ids): two recordings ingested, gate running."""
    made = []

    def build(access: str = ""):  # type: ignore[no-untyped-def]
        p = users.prefix
        register = HEADER + (
            f"C001,{p}cus,王五,custodian,JZ-C001,1\n"
            f"C002,{p}cus2,钱八,custodian,JZ-C002,1\n"
            f"S001,{p}sup,赵六,supervisor,JZ-S001,1\n"
            f"CS01,{p}cs,周九,custodian;supervisor,JZ-CS01,1\n"
            f"100001,{p}off,张三,officer,JZ-100001,1\n"
        )
        base = Path(tempfile.mkdtemp(prefix="eat-rt-"))
        st = open_station(base, register, group=users.group, extra=f"[access]\n{access}\n")
        made.append(st)
        vol, _ = bodycam(out=base / "vol", serial="ZFY0009", officer="100001", clips=2)
        assert json.loads(st.cli("ingest", str(vol), "--json", check=True).stdout)["copied"] == 2
        recs = json.loads(st.cli("status", "--json", check=True).stdout)["recordings"]
        st.gates.append(Gate(st).start())
        return st, sorted(r["id"] for r in recs)

    yield build
    for st in made:
        for gate in st.gates:
            gate.close()
        shutil.rmtree(st.dir, ignore_errors=True)


def _out(users, st, login: str, name: str) -> Path:  # type: ignore[no-untyped-def]
    out = st.dir / name
    out.mkdir()
    os.chown(out, users.names[login], users.gid)
    return out


def _request(users, st, login: str, *ids: str) -> str:  # type: ignore[no-untyped-def]
    r = users.cli(login, st, "export", "request", *ids, "--reason", "行政复议调阅", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "requested" and doc["recordings"] == list(ids)
    return str(doc["id"])


def test_two_person_rule_approval_runs_once_and_every_step_is_in_custody(users, make):  # type: ignore[no-untyped-def]
    st, ids = make()
    p = users.prefix
    cus, cus2, sup, cs = (f"{p}{s}" for s in ("cus", "cus2", "sup", "cs"))
    out = _out(users, st, cus, "out")

    one_step = users.cli(cus, st, "export", *ids, "--to", str(out), "--reason", "复核")
    assert one_step.returncode == 77 and "export request ID..." in one_step.stderr
    assert users.cli(f"{p}off", st, "export", "request", ids[0], "--reason", "x").returncode == 77

    req = _request(users, st, cus, *ids)
    own = users.cli(cus, st, "export", "approve", req)
    assert own.returncode == 77 and "needs role supervisor" in own.stderr
    early = users.cli(cus, st, "export", "run", req, "--to", str(out))
    assert early.returncode == 77 and "awaits approval" in early.stderr

    # A custodian who is also a supervisor cannot approve own request either.
    req_cs = _request(users, st, cs, ids[0])
    self_ok = users.cli(cs, st, "export", "approve", req_cs)
    assert self_ok.returncode == 77 and "other than the requester" in self_ok.stderr

    ok = users.cli(sup, st, "export", "approve", req, "--reason", "同意", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["decided_at"].endswith("+08:00")  # station time, offset
    other = users.cli(cus2, st, "export", "run", req, "--to", str(out))
    assert other.returncode == 77 and "only the requester (C001)" in other.stderr

    done = users.cli(cus, st, "export", "run", req, "--to", str(out), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(e["recording_id"] for e in result["exported"]) == ids
    assert {f.stat().st_uid for f in out.iterdir()} == {users.names[cus]}
    manifest = json.loads(Path(result["manifest"]).read_text(encoding="utf-8"))
    asked = manifest["request"]
    assert (asked["id"], asked["operator"], asked["cert_no"], asked["reason"]) == (
        req, "C001", "JZ-C001", "行政复议调阅"
    )  # fmt: skip
    approval = asked["approval"]
    assert (approval["operator"], approval["name"], approval["reason"]) == ("S001", "赵六", "同意")
    pub = st.data_dir / "keys" / "station.ed25519.pub"
    check = subprocess.run(
        [sys.executable, "-m", "agent", "verify-export", str(out), "--pubkey", str(pub)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr  # the signature covers the request

    again = users.cli(cus, st, "export", "run", req, "--to", str(_out(users, st, cus, "o2")))
    assert again.returncode == 77 and "already executed" in again.stderr
    assert users.cli(sup, st, "export", "approve", req).returncode == 77

    listed = users.cli(sup, st, "export", "list", "--open", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(d["id"], d["state"]) for d in json.loads(listed.stdout)} == {
        (req, "executed"), (req_cs, "requested")
    }  # fmt: skip
    back = users.cli(cus2, st, "export", "return", req, "--note", "光盘已归还")
    assert back.returncode == 0, back.stderr
    still = json.loads(users.cli(cus, st, "export", "list", "--open", "--json").stdout)
    assert [d["id"] for d in still] == [req_cs]
    table = users.cli(sup, st, "export", "list")
    assert table.returncode == 0 and f"{req}  returned" in table.stdout
    assert "returned to C002 at " in table.stdout and "+08:00: 光盘已归还" in table.stdout
    every = json.loads(users.cli(cus, st, "export", "list", "--json").stdout)
    returned = next(d for d in every if d["id"] == req)
    assert (returned["state"], returned["returned_by"]) == ("returned", "C002")

    kinds = ("export.requested", "export.approved", "export.returned")
    steps = [(t, e["actor"], e["payload"]["request"]) for t in kinds for e in _custody(st, t)]
    assert steps == [
        ("export.requested", "C001", req), ("export.requested", "CS01", req_cs),
        ("export.approved", "S001", req), ("export.returned", "C002", req),
    ]  # fmt: skip
    exported = _custody(st, "recording.exported")
    assert {(e["recording_id"], e["actor"], e["payload"]["request"]) for e in exported} == {
        (i, "C001", req) for i in ids
    }
    refused = [(r["payload"]["operator"], r["payload"]["action"], r["payload"]["uid"])
               for r in _custody(st, "access.refused")]  # fmt: skip
    u = users.names
    assert refused == [
        ("C001", "export", u[cus]), ("100001", "export.request", u[f"{p}off"]),
        ("C001", "export.approve", u[cus]), ("C001", "export.run", u[cus]),
        ("CS01", "export.approve", u[cs]), ("C002", "export.run", u[cus2]),
        ("C001", "export.run", u[cus]), ("S001", "export.approve", u[sup]),
    ]  # fmt: skip
    audit = users.cli(sup, st, "audit", "--kind", "export.", "--csv", "--lang", "zh")
    assert audit.returncode == 0, audit.stderr
    assert any(
        ",export.approved,赵六 批准了调阅申请 " + req in ln for ln in audit.stdout.splitlines()
    )
    assert f"钱八 登记调阅 {req} 已归还：光盘已归还" in audit.stdout
    assert st.cli("verify").returncode == 0


def test_a_run_after_the_window_or_of_a_refused_request_is_refused(users, make):  # type: ignore[no-untyped-def]
    st, ids = make("approval_window_hours = 0")
    p = users.prefix
    cus, sup = f"{p}cus", f"{p}sup"
    out = _out(users, st, cus, "out")
    req = _request(users, st, cus, ids[0])
    assert users.cli(sup, st, "export", "approve", req).returncode == 0
    late = users.cli(cus, st, "export", "run", req, "--to", str(out))
    assert late.returncode == 77 and "approval_window_hours" in late.stderr
    assert "has expired" in late.stderr

    req2 = _request(users, st, cus, ids[1])
    bare = users.cli(sup, st, "export", "refuse", req2)
    assert bare.returncode == 64 and "--reason" in bare.stderr
    no = users.cli(sup, st, "export", "refuse", req2, "--reason", "事由不充分")
    assert no.returncode == 0, no.stderr
    run = users.cli(cus, st, "export", "run", req2, "--to", str(out))
    assert run.returncode == 77 and "refused by S001: 事由不充分" in run.stderr
    assert list(out.iterdir()) == []
    (refusal,) = _custody(st, "export.refused")
    assert (refusal["actor"], refusal["payload"]["reason"]) == ("S001", "事由不充分")
    assert [r["payload"]["action"] for r in _custody(st, "access.refused")] == [
        "export.run", "export.run"
    ]  # fmt: skip
    assert _custody(st, "export.started") == []


def _mark_confidential(users, st, login: str, rid: str) -> None:  # type: ignore[no-untyped-def]
    tag = users.cli(login, st, "tag", rid, "--set", "confidentiality=state_secret")
    if "unknown metadata field 'confidentiality'" not in tag.stderr:
        assert tag.returncode == 0, tag.stderr
        return
    # Before the metadata field lands (issue 16 item 4), write the version as tagging would.
    from agent.tagging import metadata

    ctx = st.context()
    with ctx.ledger.tx() as conn:
        _, doc = metadata.current(conn, rid)
        fields = {**(doc or {}), "confidentiality": "state_secret"}
        metadata.add_version(conn, rid, fields, ["confidentiality"], actor="C001",
                             reason="test", origin="cli")  # fmt: skip


def test_confidential_footage_needs_approval_even_with_the_two_person_rule_off(users, make):  # type: ignore[no-untyped-def]
    st, ids = make("two_person_rule = false")
    p = users.prefix
    cus, sup = f"{p}cus", f"{p}sup"
    secret, plain = ids
    _mark_confidential(users, st, cus, secret)

    one = users.cli(
        cus, st, "export", plain, "--to", str(_out(users, st, cus, "a")), "--reason", "r"
    )
    assert one.returncode == 0, one.stderr  # rule off, nothing confidential: one step
    refused = users.cli(cus, st, "export", secret, "--to", str(_out(users, st, cus, "b")),
                        "--reason", "r")  # fmt: skip
    assert refused.returncode == 77 and f"confidential recordings ({secret})" in refused.stderr

    req = _request(users, st, cus, secret, plain)
    out = _out(users, st, cus, "c")
    early = users.cli(cus, st, "export", "run", req, "--to", str(out))
    assert early.returncode == 77 and "whatever access.two_person_rule says" in early.stderr
    assert list(out.iterdir()) == []
    plain_req = _request(users, st, cus, plain)
    assert users.cli(cus, st, "export", "run", plain_req, "--to", str(out)).returncode == 0

    assert users.cli(sup, st, "export", "approve", req, "--reason", "准予").returncode == 0
    done = users.cli(cus, st, "export", "run", req, "--to", str(_out(users, st, cus, "d")),
                     "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads(Path(json.loads(done.stdout)["manifest"]).read_text(encoding="utf-8"))
    assert manifest["request"]["confidential"] is True
    assert manifest["request"]["approval"]["operator"] == "S001"
    exported = {e["recording_id"] for e in _custody(st, "recording.exported")}
    assert exported == {secret, plain}
    refusals = [r["payload"] for r in _custody(st, "access.refused")]
    assert [(r["operator"], r["action"]) for r in refusals] == [
        ("C001", "export"), ("C001", "export.run")
    ]  # fmt: skip
    assert all(r["uid"] == users.names[cus] for r in refusals)


def test_the_data_dirs_owner_reads_the_borrow_register_without_the_daemon(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY0701", clips=1, seconds=1.0)
    station.cli("ingest", str(vol), check=True)
    rid = json.loads(station.cli("status", "--json", check=True).stdout)["recordings"][0]["id"]
    made = station.cli("export", "request", rid, "--reason", "复核", "--json", check=True)
    req = json.loads(made.stdout)["id"]
    # No gate reachable at all: the owner (root here) still reads the register, like `audit`.
    env = {"EVIDENCE_AGENT__API__SOCKET": '"/nonexistent/api.sock"'}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(station.config_path),
         "export", "list", "--open", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in json.loads(proc.stdout)] == [req]
