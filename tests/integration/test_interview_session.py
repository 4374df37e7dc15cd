"""Interview sessions end to end: simulated room, real ffmpeg/ffprobe, the daemon's threads,
the ledger, custody and ingest. Small pictures (320x240 at 10 fps) spare the shared CPUs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from agent.interview import commands
from agent.interview import sessions as ses
from fixtures.interview import RunningDaemon, ffprobe_streams, outbox
from fixtures.station import Station
from simulators.room import RoomSim


def _start(d: RunningDaemon, **params: object) -> dict[str, object]:
    res = commands.start(d.ctx, {"source": "test", **params})
    assert res["ok"], res
    assert res["state"] == "recording"
    return res


def _wait_ingested(d: RunningDaemon, sid: str, timeout: float = 30) -> list[dict[str, object]]:
    def done() -> list[dict[str, object]] | None:
        rows = d.ctx.ledger.query(
            "SELECT s.*, r.state AS rstate, r.sha256 AS rsha, r.spool_path FROM"
            " interview_segments s LEFT JOIN recordings r ON r.id = s.recording_id"
            " WHERE s.session_id=? ORDER BY s.camera, s.seq",
            (sid,),
        )
        if rows and all(r["rstate"] in ("spooled", "archived") for r in rows):
            return [dict(r) for r in rows]
        return None

    return d.wait(done, timeout)


def test_thirty_second_session_in_ten_second_segments(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
) -> None:
    st = make_interview_station(segment_seconds=10)
    d = running_daemon(st)
    res = _start(
        d,
        case_number="粤环罚〔2024〕12号",
        interviewers=["100001", "100002"],
        subject="李四",
        proves="现场检查情况",
    )
    sid = str(res["session"])
    started = ses.epoch(str(res["started_at"]))
    assert started is not None
    # 30 s of session; the cut grid starts at the capture's launch, a little before the first
    # frame, so stopping a second early keeps the third cut (at 30 s) out of this session.
    time.sleep(max(0.0, started + 29.0 - time.time()))
    res = commands.stop(d.ctx, {"source": "test"})
    assert res["ok"] and res["state"] == "closed", res
    rows = _wait_ingested(d, sid)

    assert len(rows) == 3
    total = 0.0
    for r in rows:
        spool = d.ctx.cfg.spool_dir / str(r["spool_path"])
        probe = ffprobe_streams(spool)
        assert probe["types"] == {"video", "audio"}, r["path"]
        total += probe["duration"]
        digest = hashlib.sha256(spool.read_bytes()).hexdigest()
        assert digest == r["sha256"] == r["rsha"]  # close-time hash = ingest hash = file

    proc = st.cli("interview", "report", sid, "--json", check=True)
    doc = json.loads(proc.stdout)
    session_s = doc["session"]["duration_s"]
    assert 28.0 <= session_s <= 30.5
    assert abs(total - session_s) <= 10.0  # within one segment
    assert doc["coverage_pct"] == 100.0
    assert doc["gaps"] == []
    assert doc["hashes_verified"] is True
    assert all(s["ingest_sha256_matches"] for s in doc["segments"])
    assert doc["session"]["case_number"] == "粤环罚〔2024〕12号"
    assert doc["session"]["interviewers"] == ["100001", "100002"]

    # each segment's SHA-256 was chained in the custody log as it closed
    chained = {
        json.loads(r["payload"])["sha256"]
        for r in d.ctx.ledger.query("SELECT payload FROM custody WHERE type='interview.segment'")
    }
    assert chained == {r["sha256"] for r in rows}
    assert st.cli("verify", check=True).returncode == 0
    started_ev = outbox(d.ctx, "interview.started")
    stopped_ev = outbox(d.ctx, "interview.stopped")
    assert started_ev[0]["session"] == sid and "subject" not in started_ev[0]
    assert stopped_ev[0]["coverage"] == 1.0 and stopped_ev[0]["segments"] == 3
    assert "interview room" in st.cli("status", check=True).stdout
    status = json.loads(st.cli("status", "--json", check=True).stdout)
    assert status["interview"]["service_running"] is True
    assert status["interview"]["session"]["id"] == sid
    assert status["interview"]["session"]["coverage"] == 1.0
    assert {r["source_path"] for r in status["recordings"]} == {f"{r['path']}" for r in rows}
    # each segment's recording carries the session's case metadata (采集地点, 采集人 ...)
    for r in status["recordings"]:
        m = r["metadata"]
        assert m["case_number"] == "粤环罚〔2024〕12号" and m["capture_place"] == "询问室1"
        assert m["collector"] == "100001" and m["proves"] == "现场检查情况"
        assert m["serial"] == "test-station-cam1" and m["capture_time"]


def test_camera_dropout_is_one_gap_and_recording_resumes(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    room: RoomSim,
) -> None:
    st = make_interview_station(segment_seconds=3)
    d = running_daemon(st)
    sid = str(_start(d, case_number="C-1")["session"])
    time.sleep(4)
    cam = room.cameras[0]
    cam.set_state("dropped")
    dropped_at = time.time()
    time.sleep(5)
    cam.set_state("return")
    back_at = time.time()
    d.wait(
        lambda: d.ctx.ledger.one(
            "SELECT 1 FROM interview_gaps WHERE session_id=? AND end IS NOT NULL", (sid,)
        ),
        10,
    )
    time.sleep(4)
    assert commands.stop(d.ctx, {"source": "test"})["ok"]
    rows = _wait_ingested(d, sid)

    gaps = d.ctx.ledger.query("SELECT * FROM interview_gaps WHERE session_id=?", (sid,))
    assert len(gaps) == 1
    g = gaps[0]
    start, end = ses.epoch(g["start"]), ses.epoch(g["end"])
    assert start is not None and end is not None
    assert g["kind"] == "unplugged" and g["camera"] == "cam1"  # refused while it was out
    assert "refused" in g["detail"].lower()
    assert abs(start - dropped_at) < 1.0
    assert 4.5 <= end - start <= 7.0  # 5 s out, plus the reconnect and ffmpeg's start
    assert end >= back_at - 0.1
    # recording resumed: segments after the gap
    assert any((ses.epoch(r["start"]) or 0) >= end - 0.01 for r in rows)
    events = outbox(d.ctx, "interview.gap")
    assert [e["open"] for e in events] == [True, False]
    # The same instants; the event carries them on the station's clock (issue 14).
    assert ses.epoch(events[1]["start"]) == start and ses.epoch(events[1]["end"]) == end
    assert events[1]["start"].endswith("+08:00")
    cov = d.session(sid)["coverage"]
    length = (ses.epoch(d.session(sid)["ended_at"]) or 0) - (
        ses.epoch(d.session(sid)["started_at"]) or 0
    )
    assert abs(cov - (1 - (end - start) / length)) < 0.02


def test_frozen_picture_and_dead_microphone_are_gaps(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    room: RoomSim,
) -> None:
    st = make_interview_station(segment_seconds=4)
    d = running_daemon(st)
    refused = commands.start(d.ctx, {"case_number": "not a case/number", "source": "test"})
    assert not refused["ok"] and "case_number" in refused["error"]
    sid = str(_start(d)["session"])
    time.sleep(1.5)
    room.cameras[0].set_state("frozen")
    time.sleep(3)
    room.cameras[0].set_state("return")
    time.sleep(1)
    room.mic.set_state("frozen")  # the microphone sends digital silence
    time.sleep(3)
    room.mic.set_state("return")
    time.sleep(1.5)
    assert commands.stop(d.ctx, {"source": "test"})["ok"]
    kinds = {
        r["kind"]: (ses.epoch(r["end"]) or 0) - (ses.epoch(r["start"]) or 0)
        for r in d.ctx.ledger.query("SELECT * FROM interview_gaps WHERE session_id=?", (sid,))
    }
    assert set(kinds) == {"frozen", "no_sound"}
    assert 2.0 <= kinds["frozen"] <= 4.5
    assert 2.0 <= kinds["no_sound"] <= 4.5
    thumb = st.data_dir / "interview" / "thumbs" / "cam1.jpg"
    assert thumb.exists() and thumb.read_bytes()[:2] == b"\xff\xd8"


def test_video_only_fallback_without_ffmpeg_says_so(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    caplog: object,
) -> None:
    st = make_interview_station(segment_seconds=2, ffmpeg="/nonexistent/ffmpeg")
    d = running_daemon(st)
    assert outbox(d.ctx, "interview.degraded")
    sid = str(_start(d, case_number="案件1")["session"])
    time.sleep(5)
    assert commands.stop(d.ctx, {"source": "test"})["ok"]
    rows = _wait_ingested(d, sid)
    assert len(rows) >= 2
    probe = ffprobe_streams(d.ctx.cfg.spool_dir / str(rows[0]["spool_path"]))
    assert probe["types"] == {"video"}
    doc = json.loads(st.cli("interview", "report", "last", "--json", check=True).stdout)
    assert doc["session"]["video_only"] is True
    assert any("VIDEO ONLY" in w for w in doc["warnings"])
    assert [g["kind"] for g in doc["gaps"]] == ["no_audio"]
    assert doc["coverage_pct"] == 0.0  # no sound: the record is not complete
    assert "NO SOUND" in str(getattr(caplog, "text", ""))


def test_check_config_names_what_an_interview_room_lacks(
    make_station: Callable[..., Station],
) -> None:
    st = make_station('[interview]\nffmpeg = "/nonexistent/ffmpeg"\n')
    env = {"EVIDENCE_AGENT__STATION__ROLE": "interview"}
    proc = st.cli("check-config", env=env)
    assert proc.returncode == 78
    assert "interview.cameras" in proc.stderr and "interview.ffmpeg" in proc.stderr
    bad = make_station('[[interview.cameras]]\nid = "c1"\nvideo = "ftp://x/y"\n', name="b")
    proc = bad.cli("check-config")
    assert proc.returncode == 78 and "interview.cameras.0.video" in proc.stderr


def test_cli_refuses_when_no_service_runs(
    make_interview_station: Callable[..., Station], make_station: Callable[..., Station]
) -> None:
    st = make_interview_station()
    proc = st.cli("interview", "start", "--case", "C-9")
    assert proc.returncode == 1
    assert "interview service is not running" in proc.stderr
    # The gate's (the daemon's) config decides the role, so a dock station is asked.
    dock = make_station(name="dock").cli("interview", "start")
    assert dock.returncode == 1 and 'station.role = "interview"' in dock.stderr
