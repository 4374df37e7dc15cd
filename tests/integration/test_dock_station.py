"""Acceptance: the agent daemon (a subprocess) serving an 8-bay dock through a shift change.

USB (ZFY and Ambarella) recorders are reached over the dock's Unix socket, serial ones over
ptys, one is plain mass storage; one recorder is not in the inventory and one runs +3 h fast.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.recorders import PASSWORD
from fixtures.station import Station
from simulators.bodycam import BodycamSpec
from simulators.dock import Dock, run_dock
from simulators.dockscript import DockRecorder

DRIFT = 3 * 3600.0

FLEET = [
    # serial, transport, battery, charging, clock offset
    ("ZFY0301", "usb", 85, True, 0.0),
    ("ZFY0302", "usb", 7, False, DRIFT),
    ("ZFY0303", "usb", 60, True, 0.0),
    ("AMB0304", "ambarella", 80, True, 0.0),
    ("SER0305", "serial", 45, True, 0.0),
    ("SER0306", "serial", 90, False, 0.0),
    ("MSD0307", "mass_storage", 80, True, 0.0),
    ("UNK0308", "usb", 50, True, 0.0),  # not in the inventory
]
SOURCES = {"usb": "usb", "ambarella": "usb", "serial": "serial", "mass_storage": "devinfo"}


def fleet() -> list[DockRecorder]:
    out = []
    for i, (serial, transport, battery, charging, offset) in enumerate(FLEET):
        spec = BodycamSpec(serial, f"31{i:04d}", clips=2 if i % 2 else 1, seconds=1.0,
                           width=64, height=64, clock_offset_s=offset)  # fmt: skip
        out.append(DockRecorder(spec, transport=transport, password="amb" if transport ==
                                "ambarella" else PASSWORD, battery_pct=battery,
                                charging=charging))  # fmt: skip
    return out


def config(tmp: Path, st_dir: Path, sock: Path, tty: Path) -> str:
    inv = st_dir / "inventory.csv"
    rows = [f"{'Ambarella' if s.startswith('AMB') else 'ZFY'},{s},HB-ZD01,,在用,"
            for s, *_ in FLEET if not s.startswith("UNK")]  # fmt: skip
    inv.write_text("vendor,serial,unit_id,officer_id,status,note\n" + "\n".join(rows) + "\n")
    creds = st_dir / "credentials"
    creds.write_text(f"zfy_admin_password={PASSWORD}\nambarella_password=amb\n")
    creds.chmod(0o600)
    return f"""
[inventory]
file = "{inv}"
[credentials]
file = "{creds}"
[recorders]
station_clock = "untrusted"
[[drivers]]
type = "zfy_usb"
backend = "sim:{sock}"
poll_seconds = 0.2
[[drivers]]
type = "zfy_usb"
profile = "ambarella"
backend = "sim:{sock}"
password_credential = "ambarella_password"
poll_seconds = 0.2
[[drivers]]
type = "serial"
ports = ["{tty}/*"]
poll_seconds = 0.2
timeout_seconds = 1
"""


def status(st: Station) -> dict[str, Any]:
    return json.loads(st.cli("status", "--json", check=True).stdout)


@pytest.fixture
def dock_station(make_station, tmp_path: Path):  # type: ignore[no-untyped-def]
    work = Path(tempfile.mkdtemp(prefix="ea-dock-"))
    sock, tty = work / "usb.sock", work / "tty"
    base = tmp_path / "st"
    base.mkdir()
    st = make_station(config(tmp_path, base, sock, tty), name="st")
    stop, ready = threading.Event(), threading.Event()
    docks: list[Dock] = []
    thread = threading.Thread(
        target=lambda: docks.append(run_dock(
            st.mount_root, 8, fleet(), stop, "shift-change", usb_socket=sock, tty_dir=tty,
            time_scale=0.025, window_s=120, ready=ready,
        )),
        daemon=True,
    )  # fmt: skip
    thread.start()
    assert ready.wait(60), "dock did not get ready"
    agent = st.popen("run")
    yield st
    agent.terminate()
    _, err = agent.communicate(timeout=30)
    stop.set()
    thread.join(30)
    shutil.rmtree(work, ignore_errors=True)
    assert agent.returncode == 0, err[-3000:]


def test_shift_change_every_recorder_identified_and_ingested(dock_station: Station) -> None:
    st = dock_station
    expected = sum(2 if i % 2 else 1 for i in range(len(FLEET)))
    deadline = time.monotonic() + 60
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = status(st)
        states = [r["state"] for r in doc["recordings"]]
        if len(states) == expected and all(
            s in ("spooled", "archived", "quarantined") for s in states
        ):
            break
        time.sleep(0.5)
    recs = {r["serial"]: r for r in doc["recorders"]}
    assert set(recs) == {s for s, *_ in FLEET}, doc["recorders"]
    for i, (serial, transport, battery, charging, _) in enumerate(FLEET):
        r = recs[serial]
        assert r["docked"] and r["serial_source"] == SOURCES[transport], r
        assert r["recordings"] == (
            {"quarantined": 2 if i % 2 else 1}
            if serial.startswith("UNK")
            else {k: v for k, v in r["recordings"].items() if k in ("spooled", "archived")}
        ), r
        assert sum(r["recordings"].values()) == (2 if i % 2 else 1)
        if transport in ("usb", "serial"):
            assert (r["battery"], r["charging"]) == (battery, charging), r
        if serial.startswith("UNK"):
            assert r["status"] == "unregistered" and r["quarantined"]
        else:
            assert r["status"] == "in_service" and r["registered"] and not r["quarantined"]
    assert recs["AMB0304"]["vendor"] == "Ambarella" and recs["AMB0304"]["battery"] is None
    assert recs["MSD0307"]["port"] is None
    ctx = st.context()
    unknown = ctx.ledger.query("SELECT payload FROM outbox WHERE type='recorder.unknown'")
    assert [json.loads(u[0])["serial"] for u in unknown] == ["UNK0308"]
    errors = ctx.ledger.query("SELECT payload FROM outbox WHERE type='recorder.error'")
    assert errors == [], [e[0] for e in errors]

    # +3 h clock: offset recorded, corrected times shown, original kept.
    drifted = recs["ZFY0302"]
    assert abs(drifted["clock_offset_s"] - DRIFT) < 3
    rows = [r for r in doc["recordings"] if r["serial"] == "ZFY0302"]
    assert len(rows) == 2
    for r in rows:
        # Recorder clocks tick in whole seconds: the measured offset is good to a second.
        assert abs(r["clock_offset_s"] - DRIFT) <= 1 and r["time_source"]["correction"]
        shift = timedelta(seconds=r["clock_offset_s"])
        start, original = (datetime.fromisoformat(r[k]) for k in ("start", "start_original"))
        assert original - start == shift
        end, end_original = (datetime.fromisoformat(r[k]) for k in ("end", "end_original"))
        assert end_original - end == shift
    offsets = ctx.ledger.query("SELECT payload FROM custody WHERE type='device.clock_offset'")
    assert [json.loads(o[0])["serial"] for o in offsets] == ["ZFY0302"]
    corrected = ctx.ledger.query(
        "SELECT COUNT(*) FROM custody WHERE type='recording.time_corrected'"
    )
    assert corrected[0][0] == 2
    (drift,) = [json.loads(e[0]) for e in ctx.ledger.query(
        "SELECT payload FROM outbox WHERE type='clock.drift'")]  # fmt: skip
    assert drift["action"] == "left" and "untrusted" in drift["reason"]
    # Tagging takes the corrected time as the capture time (采集时间) by default.
    tagged = st.cli("tag", rows[0]["id"], "--proves", "现场检查", "--operator", "310001",
                    "--reason", "shift tagging", "--json")  # fmt: skip
    assert tagged.returncode == 0, tagged.stderr
    meta = {r["id"]: r for r in status(st)["recordings"]}[rows[0]["id"]]["metadata"]
    assert datetime.fromisoformat(meta["capture_time"]) == datetime.fromisoformat(rows[0]["start"])
    others = [r for r in doc["recordings"] if r["serial"] != "ZFY0302"]
    assert all(r["start"] == r["start_original"] and r["clock_offset_s"] is None for r in others)

    # The operator accepts the unknown recorder's footage: it moves on; custody names them.
    held = [r["id"] for r in doc["recordings"] if r["serial"] == "UNK0308"]
    out = st.cli("accept", *held, "--operator", "310001", "--reason", "spare recorder, 交接登记",
                 check=True)  # fmt: skip
    assert out.stdout.count("ok") == len(held)
    again = st.cli("reject", held[0], "--operator", "310001", "--reason", "x")
    assert again.returncode == 1 and "not quarantined" in again.stdout
    accepted = ctx.ledger.query(
        "SELECT actor, payload FROM custody WHERE type='recording.accepted'"
    )
    assert len(accepted) == len(held) and accepted[0]["actor"] == "operator:310001"
    assert "交接登记" in accepted[0]["payload"]
