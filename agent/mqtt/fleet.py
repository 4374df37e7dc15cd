"""Fleet view: the 1:5 ratio per unit across every station's docks (`fleet.aggregate`).

Each station publishes its recorders retained on `<prefix>/<station>/recorders/<serial>/state`
with unit and inventory status. An aggregating station subscribes to all of them, takes the
union (a recorder seen at two stations counts once), counts those in service, takes the
active officers from its own roster, and publishes `<prefix>/units/<unit>/ratio` retained.
Stations without `fleet.aggregate` never subscribe nor publish there.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt

from agent.compliance.engine import unit_payload
from agent.config.compliance import ComplianceConfig
from agent.core import clock
from agent.rules.ratio import Recorder, unit_ratios
from agent.rules.roster import Officer

logger = logging.getLogger(__name__)


class FleetView:
    """Retained recorder states of all stations, kept up to date from the broker."""

    def __init__(self, topics_split: Callable[[str], tuple[str, str] | None]) -> None:
        self._split = topics_split
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}  # (station, serial) -> state
        self.changed = threading.Event()

    def on_message(self, msg: mqtt.MQTTMessage) -> None:
        where = self._split(msg.topic)
        if where is None:
            return
        if not msg.payload:  # an emptied retained topic: that recorder is gone
            with self._lock:
                self._seen.pop(where, None)
            self.changed.set()
            return
        try:
            state = json.loads(msg.payload)
            rec = {
                "vendor": str(state["vendor"]),
                "serial": str(state["serial"]),
                "unit": None if state.get("unit") is None else str(state["unit"]),
                "status": str(state["status"]),
                "docked": bool(state.get("docked")),
                "last_docked": state.get("last_docked"),
            }
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("fleet: ignoring malformed recorder state on %s: %s", msg.topic, exc)
            return
        with self._lock:
            if self._seen.get(where) == rec:
                return
            self._seen[where] = rec
        self.changed.set()

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._lock:
            return dict(self._seen)

    def ratios(
        self, officers: Iterable[Officer], rules: ComplianceConfig, computed_by: str, at: str
    ) -> dict[str, dict[str, Any]]:
        """unit -> payload of `<prefix>/units/<unit>/ratio`, under the compliance.ratio rules."""
        seen = self.snapshot()
        now = clock.now()
        recorders = [
            Recorder(
                r["vendor"],
                r["serial"],
                r["unit"],
                r["status"],
                now if r["docked"] else _when(r["last_docked"]),
            )
            for r in seen.values()
        ]
        stations: dict[str, set[str]] = {}
        serials: dict[str, set[str]] = {}
        for (station, _), r in seen.items():
            if r["unit"]:
                stations.setdefault(r["unit"], set()).add(station)
                serials.setdefault(r["unit"], set()).add(r["serial"])
        out = {}
        units = unit_ratios(
            officers, recorders, rules.ratio_by_unit, rules.ratio, rules.not_seen_days, now
        )
        for u in units:
            skipped = {s for s, _ in u.not_counted}
            out[u.unit_id] = {
                **unit_payload(u),
                "recorders": sorted(serials.get(u.unit_id, set()) - skipped),
                "stations": sorted(stations.get(u.unit_id, ())),
                "computed_by": computed_by,
                "at": at,
            }
        return out


def _when(text: Any) -> Any:
    try:
        return clock.parse_iso(text) if isinstance(text, str) else None
    except ValueError:
        return None
