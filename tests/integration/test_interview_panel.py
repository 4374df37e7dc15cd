"""The control panel drives sessions and its lamp tells the truth (simulated panel on a pty,
the agent's pyserial driver on the slave end)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fixtures.interview import RunningDaemon, outbox
from fixtures.station import Station
from simulators.room import RoomSim


def test_panel_start_lamp_stop_and_ingest(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    room: RoomSim,
    tmp_path: Path,
) -> None:
    panel = room.panel
    assert panel is not None
    # An inventory that lists recorders only: the room's cameras are still accepted.
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        "vendor,serial,unit_id,officer_id,status,note\nZFY,ZFY0001,UNIT01,100001,in_service,\n",
        encoding="utf-8",
    )
    st = make_interview_station(
        panel=True, segment_seconds=2, toml=f'[inventory]\nfile = "{inventory}"\n'
    )
    d = running_daemon(st)
    d.wait(lambda: d.daemon.interview is not None and d.daemon.interview.panel.connected, 10)

    pressed = panel.press("START")
    lit = panel.wait_lamp(True, 10)
    assert lit is not None, "lamp did not go on within 10 s"
    assert lit - pressed < 2.0  # the bench measures it properly; here: not absurd
    assert panel.wait_ack("ACK START", 5) is not None
    sid = d.wait(lambda: d.ctx.ledger.one("SELECT id FROM interview_sessions"), 5)["id"]
    assert d.session(sid)["state"] == "recording"
    assert d.session(sid)["requested_by"] == "panel"

    after = time.monotonic()
    panel.press("MARK")
    assert panel.wait_ack("ACK MARK", 5, after=after) is not None
    time.sleep(2.5)

    panel.press("STOP")
    assert panel.wait_lamp(False, 10) is not None
    d.wait(lambda: d.session(sid)["state"] == "closed", 15)

    def ingested() -> bool:
        rows = d.ctx.ledger.query(
            "SELECT r.state FROM interview_segments s JOIN recordings r ON r.id = s.recording_id"
            " WHERE s.session_id=?",
            (sid,),
        )
        return bool(rows) and all(
            r["state"] in ("spooled", "archived") for r in rows
        )  # not quarantined

    d.wait(ingested, 30)
    marks = d.ctx.ledger.query("SELECT * FROM interview_marks WHERE session_id=?", (sid,))
    assert [m["source"] for m in marks] == ["panel"]
    assert outbox(d.ctx, "interview.mark")

    after = time.monotonic()
    panel.press("STOP")  # nothing is recording: refused, and the panel is told why
    nak = panel.wait_ack("NAK STOP", 5, after=after)
    assert nak is not None and "nothing to stop" in nak


def test_lamp_goes_off_while_the_camera_is_gone(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    room: RoomSim,
) -> None:
    panel = room.panel
    assert panel is not None
    st = make_interview_station(panel=True, segment_seconds=3)
    d = running_daemon(st)
    d.wait(lambda: d.daemon.interview is not None and d.daemon.interview.panel.connected, 10)
    panel.press("START")
    assert panel.wait_lamp(True, 10) is not None
    room.cameras[0].set_state("dropped")
    assert panel.wait_lamp(False, 5) is not None  # recording failed: the lamp says so
    room.cameras[0].set_state("return")
    assert panel.wait_lamp(True, 10) is not None  # and comes back with the picture
    panel.hello()  # the panel rebooted: dark until the agent tells it again
    assert panel.wait_lamp(True, 5) is not None
    panel.press("STOP")
    assert panel.wait_lamp(False, 10) is not None
