"""One effective-time rule (issue 18): a drifted recorder's corrected start is what status,
compliance, a new archive key, the sidecar and the export manifest all show; a recording
archived before its correction stays addressed by its stored reference. Real SeaweedFS."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.archive.archiver import Archiver
from agent.ledger import custody
from agent.recorders.recclock import correct_recording
from fixtures.archive import drain, ingest_volume

OFFSET = 2 * 86400.0  # two days fast: the corrected day differs from the recorder's


def _status(st) -> dict:  # type: ignore[no-untyped-def]
    out = st.cli("status", "--json", "--limit", "0", check=True)
    return {r["id"]: r for r in json.loads(out.stdout)["recordings"]}


def _day(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y/%m/%d")


def test_a_drifted_recorder_shows_one_start_everywhere(s3_station, bodycam, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s3 = s3_station()
    ctx = s3.context()
    early, _ = bodycam(serial="ZFY0501", clips=1, seconds=1.0)
    (archived_first,) = ingest_volume(ctx, early)
    drain(Archiver(ctx))  # archived under the recorder's own date, before any correction
    late, _ = bodycam(serial="ZFY0502", clips=1, seconds=1.0)
    (corrected_first,) = ingest_volume(ctx, late)
    with ctx.ledger.tx() as conn:
        for rid in (archived_first, corrected_first):
            correct_recording(conn, ctx, rid, OFFSET)
    before = {
        r["id"]: r["archive_ref"]
        for r in ctx.ledger.query("SELECT id, archive_ref FROM recordings")
    }
    drain(Archiver(ctx))
    with ctx.ledger.tx() as conn:
        custody.checkpoint(conn, ctx.key, ctx.station_id)

    rows = _status(s3.station)
    new = rows[corrected_first]
    start = new["start"]
    assert datetime.fromisoformat(new["start_original"]) - datetime.fromisoformat(
        start
    ) == timedelta(seconds=OFFSET)
    # The new upload's key carries the corrected day, not the recorder's.
    assert f"/{_day(start)}/" in new["archive_ref"]
    assert f"/{_day(new['start_original'])}/" not in new["archive_ref"]
    # The compliance deadline follows the corrected end.
    assert datetime.fromisoformat(new["deadline"]) < datetime.fromisoformat(
        new["end_original"]
    ) + timedelta(days=4)
    # The sidecar says the same start.
    client = s3.server.client()
    key = new["archive_ref"].split(f"s3://{s3.bucket}/", 1)[1].split("?", 1)[0]
    sidecar = json.loads(client.get_object(Bucket=s3.bucket, Key=key + ".meta.json")["Body"].read())
    assert sidecar["start"] == start and sidecar["start_original"] == new["start_original"]

    # The one archived before the correction keeps its stored reference.
    old = rows[archived_first]
    assert old["archive_ref"] == before[archived_first]
    assert f"/{_day(old['start_original'])}/" in old["archive_ref"]

    out = tmp_path / "export"
    s3.station.cli(
        "export", corrected_first, archived_first, "--to", str(out), "--reason", "复核",
        check=True,
    )  # fmt: skip
    (path,) = out.glob("manifest-*.json")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries = {e["id"]: e for e in manifest["recordings"]}
    assert entries[corrected_first]["start"] == start
    assert entries[archived_first]["start"] == old["start"]
    verify = s3.station.cli("verify", "--json")
    assert verify.returncode == 0, verify.stdout[-2000:]
