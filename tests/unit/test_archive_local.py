"""The embedded default archive (file://): same interface, write-once, hash-named, read-only;
backlog figures; archive config errors."""

from __future__ import annotations

import json
import stat

from agent.actions.export import Exporter
from agent.archive.archiver import Archiver
from agent.archive.backlog import archive_backlog
from agent.core import clock
from agent.retention.housekeeping import housekeep
from fixtures.archive import drain, ingest_volume


def test_local_archive_end_to_end(station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY0701", clips=2, seconds=1.0)
    ctx = station.context()
    a, b = ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    drain(arch)
    arch.maintain(force=True)
    rows = ctx.ledger.query("SELECT id, state, archive_ref, sha256 FROM recordings")
    assert {r["state"] for r in rows} == {"archived"}
    for r in rows:
        path = station.data_dir / "archive" / r["archive_ref"].removeprefix("file:")
        assert path.name == r["sha256"] and stat.S_IMODE(path.stat().st_mode) == 0o444
    docs = station.data_dir / "archive" / "_docs"
    assert (docs / "_sidecars" / f"{a}.meta.json" / "v000001.json").exists()
    assert list((docs / "_custody").rglob("*.pem"))

    ctx.cfg.archive.spool_keep_days = 0
    assert sorted(housekeep(ctx, arch.store).removed) == sorted([a, b])
    result = Exporter(ctx).run([a], tmp_path / "out", reason="review", operator="OP1")
    assert [e.source for e in result.exported] == ["archive"] and result.manifest
    assert station.cli("verify").returncode == 0


def test_local_bit_flip_is_refused(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY0702", clips=1, seconds=1.0)
    ctx = station.context()
    (rid,) = ingest_volume(ctx, vol)
    spool = ctx.cfg.spool_dir / ctx.ledger.one("SELECT spool_path FROM recordings")[0]
    data = bytearray(spool.read_bytes())
    data[100] ^= 1
    spool.write_bytes(bytes(data))
    drain(Archiver(ctx))
    assert ctx.ledger.one("SELECT state FROM recordings")[0] == "spooled"
    assert ctx.ledger.one("SELECT 1 FROM outbox WHERE type='integrity.violation'")
    assert not list(
        (station.data_dir / "archive").rglob(ctx.ledger.one("SELECT sha256 FROM recordings")[0])
    )


def test_backlog_and_drain_estimate(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    vol, _ = bodycam(serial="ZFY0703", clips=3, seconds=1.0)
    ctx = station.context()
    ingest_volume(ctx, vol)
    total = ctx.ledger.one("SELECT SUM(size), MIN(deadline) FROM recordings")
    backlog = archive_backlog(ctx)
    assert backlog["recordings"] == 3 and backlog["bytes"] == total[0]
    assert backlog["oldest_deadline"] == total[1]
    assert backlog["estimated_drain_seconds"] is None  # nothing measured yet
    with ctx.ledger.tx() as conn:
        ctx.ledger.set_kv(conn, "archive.rate_bps", "1000")
    assert archive_backlog(ctx)["estimated_drain_seconds"] == round(total[0] / 1000, 1)
    ctx.cfg.archive.bandwidth_bytes_per_s = 500
    assert archive_backlog(ctx)["estimated_drain_seconds"] == round(total[0] / 500, 1)
    ctx.cfg.archive.bandwidth_bytes_per_s = 0
    paused = archive_backlog(ctx)
    assert paused["paused"] and paused["estimated_drain_seconds"] is None
    assert Archiver(ctx).step() >= 1  # paused: nothing uploaded
    assert ctx.ledger.one("SELECT COUNT(*) FROM recordings WHERE state='spooled'")[0] == 3
    doc = json.loads(station.cli("status", "--json").stdout)
    assert doc["station"]["upload_backlog"]["recordings"] == 3
    assert clock.now()  # the injectable clock is what the windows read


def test_archive_config_errors_name_the_key(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station(
        '[archive]\nurl = "s3://Bad_Bucket"\nretention = { mode = "FOREVER" }\n'
        'bandwidth_windows = [{ start = "8am", end = "18:00", bytes_per_s = 1 }]\n'
    )
    proc = st.cli("check-config")
    assert proc.returncode == 78
    for key in ("archive.url", "archive.retention.mode", "archive.bandwidth_windows.0.start"):
        assert key in proc.stderr, proc.stderr


def test_partial_s3_credentials_are_reported(make_station, tmp_path) -> None:  # type: ignore[no-untyped-def]
    creds = tmp_path / "creds"
    creds.write_text("AWS_ACCESS_KEY_ID=abc\n")
    st = make_station(f'[credentials]\nfile = "{creds}"\n[archive]\nurl = "s3://bucket/p"\n')
    proc = st.cli("check-config")
    assert proc.returncode == 78 and "credentials.file" in proc.stderr
    assert "AWS_SECRET_ACCESS_KEY" in proc.stderr


def test_rewritten_ledger_is_caught_by_the_archived_anchor(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    """Someone with full access to the station rewrites an event, rebuilds the hash chain and
    re-signs every checkpoint: only the write-once copy in the archive can tell."""
    from agent.ledger import appendonly, custody
    from agent.ledger.custody import event_hash

    vol, _ = bodycam(serial="ZFY0704", clips=1, seconds=1.0)
    ctx = station.context()
    ingest_volume(ctx, vol)
    arch = Archiver(ctx)
    drain(arch)
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)
    arch.maintain(force=True)
    clean = json.loads(station.cli("verify", "--json").stdout)
    assert clean["ok"] and clean["anchors_checked"] == 1

    with ctx.ledger.tx() as conn:
        for guard in ("custody_no_update", "checkpoints_no_update"):
            conn.execute(f"DROP TRIGGER {guard}")  # and re-created below: verify sees no gap
        rows = conn.execute("SELECT * FROM custody ORDER BY seq").fetchall()
        prev = custody.GENESIS
        for r in rows:
            payload = r["payload"]
            if r["type"] == "recording.discovered":
                payload = payload.replace('"size":', '"forged":true,"size":')
            h = event_hash(
                r["seq"], r["at"], r["type"], r["recording_id"], r["actor"], payload, r["alg"], prev
            )
            conn.execute(
                "UPDATE custody SET payload=?, prev_hash=?, hash=? WHERE seq=?",
                (payload, prev, h, r["seq"]),
            )
            prev = h
        for cp in conn.execute("SELECT * FROM checkpoints").fetchall():
            st = json.loads(cp["statement"])
            head = conn.execute("SELECT hash FROM custody WHERE seq=?", (st["head_seq"],))
            st["head_hash"] = head.fetchone()[0]
            statement = custody.canonical(st)
            conn.execute(
                "UPDATE checkpoints SET head_hash=?, statement=?, signature=? WHERE seq=?",
                (st["head_hash"], statement, ctx.key.sign(statement.encode()).hex(), cp["seq"]),
            )
        for guard in ("custody_no_update", "checkpoints_no_update"):
            conn.execute(appendonly.GUARDS[guard])
    proc = station.cli("verify", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert {p["kind"] for p in report["problems"]} == {"anchor"}, report["problems"]


def test_earliest_deadline_is_archived_first(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    late, _ = bodycam(serial="ZFY0705", clips=1, seconds=1.0, start=datetime(2026, 11, 20, 9))
    early, _ = bodycam(serial="ZFY0706", clips=1, seconds=1.0, start=datetime(2026, 11, 16, 9))
    ctx = station.context()
    (later,) = ingest_volume(ctx, late)
    (earlier,) = ingest_volume(ctx, early)
    deadlines = dict(ctx.ledger.query("SELECT id, deadline FROM recordings"))
    assert deadlines[earlier] < deadlines[later]
    arch = Archiver(ctx)
    assert arch.step() == 0.0
    states = dict(ctx.ledger.query("SELECT id, state FROM recordings"))
    assert states == {earlier: "archived", later: "spooled"}
