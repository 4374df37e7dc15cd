"""`demo --mqtt`: the demo's agent publishes to a local Mosquitto, and the fleet dashboard is
served next to it; the demo prints the dashboard's URL (with the broker's WebSocket URL in it)
and, once everything is ingested, keeps both running until Ctrl-C or `--hold` seconds.

The demo station also gets an officer roster (two units, one short of recorders), an inventory
of its recorders (all in service) and publishes the fleet ratio, so the dashboard has 1:5
ratios to show.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.cli.demobroker import DashboardServer, LocalBroker, dashboard_dir

UNITS = {"UNIT01": "执法一大队", "UNIT02": "执法二大队"}


def write_roster(work: Path, officers: list[tuple[str, str]]) -> Path:
    """The demo's officers (recorder i belongs to officer i and unit UNIT0{1 + i % 2}) plus
    more officers, so UNIT01 needs three recorders at 1:5 and UNIT02 two."""
    rows = [(oid, name, f"UNIT0{1 + i % 2}") for i, (oid, name) in enumerate(officers)]
    extra = {"UNIT01": 12, "UNIT02": 6}
    for unit, total in extra.items():
        have = sum(1 for r in rows if r[2] == unit)
        for k in range(total - have):
            rows.append((f"{unit[-1]}9{k:04d}", f"{UNITS[unit]}队员{k + 1}", unit))
    path = work / "roster.csv"
    path.write_text(
        "officer_id,name,unit_id,unit_name,active\n"
        + "".join(f"{oid},{name},{unit},{UNITS[unit]},1\n" for oid, name, unit in rows),
        encoding="utf-8",
    )
    return path


def write_inventory(work: Path, recorders: list[tuple[str, str, str]]) -> Path:
    """Every demo recorder (vendor, serial, unit) in service: none is quarantined."""
    path = work / "inventory.csv"
    path.write_text(
        "vendor,serial,unit_id,officer_id,status,note\n"
        + "".join(f"{v},{s},{u},,in_service,demo\n" for v, s, u in recorders),
        encoding="utf-8",
    )
    return path


class DemoMqtt:
    """The broker and the dashboard server of one demo run."""

    def __init__(self, work: Path) -> None:
        self.root = dashboard_dir()  # before anything starts: a missing install fails first
        self.broker = LocalBroker(work / "mosquitto")
        self.server = DashboardServer(self.root)

    def start(self) -> DemoMqtt:
        self.broker.start()
        try:
            self.server.start()
        except BaseException:
            self.broker.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return self.server.url(self.broker.ws_url)

    def environ(self, roster: Path, inventory: Path) -> dict[str, str]:
        """Config overrides for the demo's agent (EVIDENCE_AGENT__SECTION__KEY)."""
        return {
            "EVIDENCE_AGENT__INVENTORY__FILE": f'"{inventory}"',
            "EVIDENCE_AGENT__MQTT__URL": f'"{self.broker.url}"',
            "EVIDENCE_AGENT__MQTT__DEBOUNCE_SECONDS": "0.5",
            "EVIDENCE_AGENT__MQTT__HEARTBEAT_SECONDS": "30",
            "EVIDENCE_AGENT__ROSTER__FILE": f'"{roster}"',
            "EVIDENCE_AGENT__FLEET__AGGREGATE": "true",
        }

    def announce(self) -> None:
        # Plain print, not rich: a long URL must stay on one line to be copied or clicked.
        print(f"MQTT broker: {self.broker.url} (WebSocket {self.broker.ws_url})", flush=True)
        print(f"dashboard: {self.url}", flush=True)

    def hold(self, seconds: float | None) -> None:
        """Keep the agent, broker and dashboard up: `seconds`, or until Ctrl-C on a terminal
        when not given (0 without a terminal)."""
        if seconds is None:
            seconds = float("inf") if sys.stdin.isatty() else 0.0
        if seconds <= 0:
            return
        how = "Ctrl-C to stop" if seconds == float("inf") else f"for {seconds:g} s or Ctrl-C"
        print(f"dashboard live at {self.url} ({how})", flush=True)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        except KeyboardInterrupt:
            pass

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            self.broker.stop()
