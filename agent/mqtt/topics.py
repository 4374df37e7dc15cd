"""The topic layout (DESIGN.md "MQTT"): one place that builds every topic name.

Ids that end up in topics (station, serial, unit) go through safe_topic_id, so MQTT
wildcards (`+`, `#`) and level separators (`/`) never leak into a topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.core.ids import safe_topic_id

UNITS = "units"  # <prefix>/units/<unit>/ratio; a station may not be called "units"
VERBS = ("tag", "rescan", "release", "priority", "interview_start", "interview_stop")


@dataclass(frozen=True)
class Topics:
    prefix: str
    station: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{safe_topic_id(self.station)}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def compliance(self) -> str:
        return f"{self.base}/compliance"

    @property
    def custody(self) -> str:
        return f"{self.base}/custody"

    def recorder(self, serial: str) -> str:
        return f"{self.base}/recorders/{safe_topic_id(serial)}/state"

    @property
    def recorder_prefix(self) -> str:
        return f"{self.base}/recorders/"

    @property
    def cmd_filter(self) -> str:
        return f"{self.base}/cmd/+"

    def reply(self, verb: str) -> str:
        return f"{self.base}/reply/{safe_topic_id(verb)}"

    def verb_of(self, topic: str) -> str | None:
        head = f"{self.base}/cmd/"
        return topic[len(head) :] if topic.startswith(head) else None

    # --- fleet ------------------------------------------------------------------------------

    @property
    def fleet_recorders_filter(self) -> str:
        return f"{self.prefix}/+/recorders/+/state"

    def unit_ratio(self, unit: str) -> str:
        return f"{self.prefix}/{UNITS}/{safe_topic_id(unit)}/ratio"

    def split_recorder_topic(self, topic: str) -> tuple[str, str] | None:
        """(station, serial) of `<prefix>/<station>/recorders/<serial>/state`, else None."""
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 4 or parts[1] != "recorders" or parts[3] != "state":
            return None
        return parts[0], parts[2]

    # --- Home Assistant ---------------------------------------------------------------------

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def ha_config(self, object_id: str) -> str:
        node = safe_topic_id(f"evidence_{self.station}")
        return f"{self.discovery_prefix}/sensor/{node}/{safe_topic_id(object_id)}/config"
