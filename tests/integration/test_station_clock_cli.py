"""One clock on the wire for the CLI too (issue 14, item 3): `status --json`, `report --json`
and `report --csv` give every time in `station.timezone` with its offset (the default zone,
Asia/Shanghai: `+08:00`), while the ledger underneath keeps UTC."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from typing import Any

TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)")


def _times(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return [value] if isinstance(value, str) and TIME.fullmatch(value) else []


def test_status_and_report_use_the_station_clock(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    vol, _clips = bodycam(clips=2)
    station.cli("ingest", str(vol), check=True)
    with sqlite3.connect(station.data_dir / "ledger.sqlite3") as db:
        stored = db.execute("SELECT discovered_at, deadline FROM recordings").fetchall()
    assert any(t and t.endswith("+00:00") for row in stored for t in row)  # the ledger: UTC
    status = json.loads(station.cli("status", "--json", check=True).stdout)
    report = json.loads(station.cli("report", "--json", check=True).stdout)
    found = _times(status) + _times(report)
    assert len(found) >= 6, found
    assert all(t.endswith("+08:00") for t in found), [t for t in found if "+08:00" not in t]
    text = station.cli("report", "--csv", "--lang", "en", check=True).stdout
    cells = [c for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row]
    in_csv = [c for c in cells if TIME.fullmatch(c)]
    assert in_csv and all(c.endswith("+08:00") for c in in_csv), in_csv


def test_streamed_status_uses_the_station_clock(station, bodycam) -> None:  # type: ignore[no-untyped-def]
    # `status --json --limit 0` writes recording by recording: each one localized too.
    vol, _clips = bodycam(clips=2)
    station.cli("ingest", str(vol), check=True)
    streamed = json.loads(station.cli("status", "--json", "--limit", "0", check=True).stdout)
    found = _times(streamed["recordings"])
    assert len(found) >= 6, found
    assert all(t.endswith("+08:00") for t in found), found
    assert all(t.endswith("+08:00") for t in _times(streamed))
