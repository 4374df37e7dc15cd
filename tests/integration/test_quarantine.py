"""accept / reject of quarantined recordings: state, decision, custody, errors."""

from __future__ import annotations

import json
from pathlib import Path


def test_reject_holds_accept_releases(make_station, bodycam, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inv = tmp_path / "inventory.csv"
    inv.write_text("vendor,serial,unit_id,officer_id,status,note\nZFY,ZFY0001,U1,,在用,\n")
    st = make_station(f'[inventory]\nfile = "{inv}"\n')
    vol, _ = bodycam(st.mount_root / "X", serial="ZFY0999", clips=2)
    out = st.cli("ingest", str(vol), "--json", check=True)
    assert json.loads(out.stdout)["copied"] == 2
    doc = json.loads(st.cli("status", "--json", check=True).stdout)
    ids = [r["id"] for r in doc["recordings"]]
    assert [r["state"] for r in doc["recordings"]] == ["quarantined", "quarantined"]
    (rec,) = doc["recorders"]
    assert rec["quarantined"] and rec["status"] == "unregistered"

    res = st.cli("reject", ids[0], "--operator", "op7", "--reason", "private phone footage")
    assert res.returncode == 0 and "rejected: held" in res.stdout
    again = st.cli("reject", ids[0], "--operator", "op7", "--reason", "again")
    assert again.returncode == 0 and "already rejected" in again.stdout
    missing = st.cli("accept", "0" * 12, "--operator", "op7", "--reason", "r")
    assert missing.returncode == 1 and "no recording whose SHA-256 starts with" in missing.stdout
    no_reason = st.cli("accept", ids[1], "--operator", "op7", "--reason", " ")
    assert no_reason.returncode == 1 and "--reason is required" in no_reason.stderr

    doc = {r["id"]: r for r in json.loads(st.cli("status", "--json").stdout)["recordings"]}
    assert (doc[ids[0]]["state"], doc[ids[0]]["quarantine_decision"]) == ("quarantined", "rejected")
    # An operator may still accept a rejected recording (a mistake corrected); never lost.
    res = st.cli("accept", doc[ids[0]]["sha256"][:16], ids[1], "--operator", "op8",
                 "--reason", "confirmed with unit", "--json")  # fmt: skip
    assert res.returncode == 0
    assert [r["ok"] for r in json.loads(res.stdout)] == [True, True]
    doc = {r["id"]: r for r in json.loads(st.cli("status", "--json").stdout)["recordings"]}
    assert {doc[i]["state"] for i in ids} == {"spooled"}
    assert {doc[i]["quarantine_decision"] for i in ids} == {"accepted"}
    ctx = st.context()
    types = [r[0] for r in ctx.ledger.query(
        "SELECT type FROM custody WHERE recording_id=? ORDER BY seq", (ids[0],))]  # fmt: skip
    assert types[-2:] == ["recording.rejected", "recording.accepted"]
    verify = st.cli("verify")
    assert verify.returncode == 0, verify.stdout
