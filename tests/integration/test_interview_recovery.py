"""What the daemon makes of sessions a dead agent left behind in the ledger."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.interview import sessions as ses
from fixtures.interview import RunningDaemon
from fixtures.station import Station


def test_session_left_stopping_is_closed_and_its_gap_ends_at_the_stop(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
) -> None:
    st = make_interview_station()
    ctx = st.context()
    t0 = time.time() - 60
    with ctx.ledger.tx() as conn:
        sid = ses.request_start(conn, "询问室1", ses.Metadata(case_number="R-1"), "cli", "test")
        ses.set_recording(conn, sid, t0, ["cam1"], False)
        ses.open_gap(conn, sid, "cam1", "no_frames", t0 + 10, "camera: gone")
        ses.request_stop(conn, sid, "cli", "test")
    ended = ses.epoch(ses.get(ctx.ledger.connect(), sid)["ended_at"])
    ctx.close()

    d = running_daemon(st)
    d.wait(lambda: d.session(sid)["state"] in ("closed", "failed"), 15)
    row = d.session(sid)
    assert row["state"] == "closed"
    gap = d.ctx.ledger.one("SELECT * FROM interview_gaps WHERE session_id=?", (sid,))
    assert gap["end"] is not None and ses.epoch(gap["end"]) == ended
    assert row["coverage"] == 0.0  # nothing was ever recorded for it


def test_stale_start_request_fails_with_a_reason(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
) -> None:
    st = make_interview_station(start_timeout_seconds=5)
    ctx = st.context()
    with ctx.ledger.tx() as conn:
        sid = ses.request_start(conn, "询问室1", ses.Metadata(), "cli", "test")
        conn.execute(
            "UPDATE interview_sessions SET requested_at=? WHERE id=?",
            (ses.iso_at(time.time() - 60), sid),
        )
    ctx.close()
    d = running_daemon(st)
    row = d.session(sid)
    assert row["state"] == "failed" and "restarted before recording" in row["reason"]
    assert d.ctx.ledger.one("SELECT 1 FROM interview_segments") is None
