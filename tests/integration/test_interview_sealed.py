"""Closed interview segments are kept encrypted (issue 19): the camera's volume holds
envelopes, no plaintext segment is left once it closed; ingest, the report, verify and export
still see the footage (real ffmpeg cameras from the room simulator)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from agent.core import envelope, sealedio
from agent.interview import commands
from agent.interview import sessions as ses
from agent.station import kek
from fixtures.interview import RunningDaemon, ffprobe_streams
from fixtures.probe import ffprobe_finds_media
from fixtures.station import Station


def test_closed_segments_are_sealed_and_still_ingested_reported_exported(
    make_interview_station: Callable[..., Station], tmp_path: Path
) -> None:
    key = tmp_path / "etc-keys" / "encryption.key"
    kek.write_ring(key, [os.urandom(32)])
    _, pub = kek.new_recovery_pair(tmp_path / "agency")
    toml = (f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\n'
            f'recovery_public_key = "{pub}"\n')  # fmt: skip
    st = make_interview_station(segment_seconds=4, toml=toml)
    d = RunningDaemon(st.context()).start()
    try:
        rows = _session(d, st, tmp_path)
    finally:
        d.stop()
    # Rotation re-wraps the sealed segments left in the volume: header only, same size and
    # mtime (ingest and the wipe gate know a source by them), the chunks untouched.
    volumes = [Path(str(r["volume"])) / str(r["path"]) for r in rows]
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()[1024:]) for p in volumes}
    assert st.cli("keys", "encryption", "rotate").returncode == 0
    new = envelope.kek_id(kek.load_ring(key)[0])
    for p in volumes:
        raw = p.read_bytes()
        assert envelope.parse_header(raw, str(p)).key_ids(envelope.SLOT_STATION) == [new]
        assert (p.stat().st_size, p.stat().st_mtime_ns, raw[1024:]) == before[p]
    assert st.cli("verify").returncode == 0
    ctx = st.context()
    (event,) = ctx.ledger.query("SELECT payload FROM custody WHERE type='crypto.key_rotated'")
    assert json.loads(event["payload"])["interview_segments"] == len(volumes)


def _session(d: RunningDaemon, st: Station, tmp_path: Path) -> list[dict[str, object]]:
    res = commands.start(d.ctx, {"source": "test", "interviewers": ["100001"],
                                 "case_number": "粤环罚〔2024〕7号"})  # fmt: skip
    assert res["ok"], res
    sid = str(res["session"])
    started = ses.epoch(str(res["started_at"]))
    assert started is not None
    time.sleep(max(0.0, started + 7.0 - time.time()))
    assert commands.stop(d.ctx, {"source": "test"})["ok"]

    def ingested() -> list[dict[str, object]] | None:
        rows = d.ctx.ledger.query(
            "SELECT s.*, r.state AS rstate, r.sha256 AS rsha, r.size AS rsize, r.spool_path"
            " FROM interview_segments s LEFT JOIN recordings r ON r.id = s.recording_id"
            " WHERE s.session_id=? ORDER BY s.camera, s.seq",
            (sid,),
        )
        if rows and all(r["rstate"] in ("spooled", "archived") for r in rows):
            return [dict(r) for r in rows]
        return None

    rows = d.wait(ingested, 60)
    assert len(rows) >= 2
    keys = d.ctx.keyring
    for r in rows:
        volume_copy = Path(str(r["volume"])) / str(r["path"])
        assert sealedio.is_sealed(volume_copy), volume_copy
        assert not ffprobe_finds_media(volume_copy), (
            f"ffprobe read the sealed segment {volume_copy}"
        )
        assert not Path(str(r["work_path"])).exists()  # the plaintext went after the seal verified
        assert sealedio.hash_plain(volume_copy, keys)[0] == r["sha256"]
        spool = d.ctx.cfg.spool_dir / str(r["spool_path"])
        assert sealedio.is_sealed(spool)
        # Ingest copied the footage, not the envelope: same hash and size as at close.
        assert r["rsha"] == r["sha256"] and r["rsize"] == r["size"]
        assert sealedio.hash_plain(spool, keys) == (r["sha256"], r["size"])
    work_root = d.ctx.cfg.interview_dir / "work"
    assert Path(str(rows[0]["work_path"])).is_relative_to(work_root)
    # No plaintext segment left anywhere: the run dirs hold none, the volume only envelopes.
    assert [p for p in work_root.rglob("*.ts")] == []
    volumes = [p for p in (d.ctx.cfg.interview_dir / "volumes").rglob("*") if p.is_file()]
    assert volumes and all(sealedio.is_sealed(p) for p in volumes)
    # The pictures are footage too: every thumbnail is an envelope that opens to a JPEG.
    thumbs = [p for p in (d.ctx.cfg.interview_dir / "thumbs").rglob("*") if p.is_file()]
    assert thumbs and all(p.name.endswith(".jpg.sealed") for p in thumbs), thumbs
    for p in thumbs:
        assert sealedio.is_sealed(p) and not p.read_bytes().startswith(b"\xff\xd8")
        with sealedio.PlainReader(p, keys) as plain:
            assert plain.read(3) == b"\xff\xd8\xff"  # a JPEG once opened with the key
    doc = json.loads(st.cli("interview", "report", sid, "--json", check=True).stdout)
    assert doc["hashes_verified"] is True
    assert all(s["ingest_sha256_matches"] and s["hash_ok"] for s in doc["segments"])
    assert st.cli("verify", check=True).returncode == 0
    rid = str(rows[0]["recording_id"])
    dest = tmp_path / "export"
    st.cli("export", rid, "--to", str(dest), "--reason", "复议", "--operator", "OP1", check=True)
    (exported,) = [p for p in dest.iterdir() if p.name.startswith(rid)]
    assert ffprobe_streams(exported)["types"] == {"video", "audio"}
    assert ffprobe_finds_media(exported)  # the check the sealed copies fail can say yes
    return rows


def _row(work: Path, volume: Path, sha: str) -> dict[str, object]:
    return {"work_path": str(work), "volume": str(volume), "path": "s1/seg.ts", "seq": 1,
            "session_id": "s1", "end": "2026-12-03T10:00:04+08:00", "sha256": sha}  # fmt: skip


def test_a_close_cut_off_at_any_step_ends_sealed_without_losing_the_segment(
    make_station: Callable[..., Station], tmp_path: Path
) -> None:
    """A crash between the sealing, the move and the removal of the plaintext: the next
    finish (recovery) ends with the envelope in the volume and no plaintext, and removes the
    plaintext only when the envelope opens to the chained hash."""
    import hashlib

    from agent.interview import sealseg
    from agent.interview import segments as segs

    key = tmp_path / "etc-keys" / "encryption.key"
    kek.write_ring(key, [os.urandom(32)])
    ctx = make_station(f'[crypto]\nencrypt = "required"\nkey_file = "{key}"\n').context()
    data = os.urandom(3 << 20)
    sha = hashlib.sha256(data).hexdigest()
    for n, cut in enumerate(("after_seal", "after_move", "before_seal")):
        run = tmp_path / f"run{n}"
        run.mkdir()
        work, volume = run / "seg_000001.ts", tmp_path / f"volume{n}"
        work.write_bytes(data)
        dest = volume / "s1" / "seg.ts"
        if cut != "before_seal":
            assert sealseg.seal(ctx, work) == sha
        if cut == "after_move":
            dest.parent.mkdir(parents=True)
            os.rename(sealseg.staged(work), dest)
        segs.finish(ctx, _row(work, volume, sha))  # type: ignore[arg-type]
        assert not work.exists() and not sealseg.staged(work).exists(), cut
        assert sealedio.is_sealed(dest) and sealedio.hash_plain(dest, ctx.keyring) == (
            sha, len(data)
        )  # fmt: skip
    # An envelope that does not open to the chained hash never costs the plaintext.
    run = tmp_path / "run-bad"
    run.mkdir()
    work, volume = run / "seg_000001.ts", tmp_path / "volume-bad"
    work.write_bytes(data)
    sealseg.seal(ctx, work)
    segs.finish(ctx, _row(work, volume, "0" * 64))  # type: ignore[arg-type]
    assert work.exists()
