"""A clip still being written is `waiting`, never copied half; it is ingested once it settles."""

from __future__ import annotations

import json
import threading

from simulators.bodycam import grow_clip


def test_growing_clip_waits_then_is_ingested(station, bodycam):
    vol, clips = bodycam(serial="ZFY0009", clips=2, faults=("growing",))
    grower = threading.Thread(target=grow_clip, args=(clips[-1], 2.0), daemon=True)
    grower.start()
    out = station.cli("ingest", str(vol), "--json", "--max-wait", "20", check=True)
    grower.join()
    result = json.loads(out.stdout)
    assert result["failed"] == [] and result["waiting"] == []
    doc = json.loads(station.cli("status", "--json", check=True).stdout)
    assert len(doc["recordings"]) == 2  # the growing clip is one recording, not several
    final_size = clips[-1].stat().st_size
    grown = next(r for r in doc["recordings"] if r["source_path"].endswith(clips[-1].name))
    assert grown["state"] == "spooled" and grown["size"] == final_size
