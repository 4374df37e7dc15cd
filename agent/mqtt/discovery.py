"""Home Assistant MQTT discovery for the station's main sensors.

One `homeassistant/sensor/evidence_<station>/<object>/config` per sensor (retained), all
grouped under one device and tied to the station's availability topic: queue depth, oldest
open deadline, overdue count, spool free, and officers per recorder for each unit. They are
published with the rest of the retained state and re-sent when Home Assistant announces
itself on `homeassistant/status` (its birth message), e.g. after it restarted.
"""

from __future__ import annotations

from typing import Any

from agent import __version__
from agent.core.ids import safe_topic_id
from agent.mqtt.topics import Topics


def _device(topics: Topics) -> dict[str, Any]:
    return {
        "identifiers": [f"evidence_{safe_topic_id(topics.station)}"],
        "name": f"Evidence station {topics.station}",
        "manufacturer": "evidence-agent",
        "model": "dock/interview station",
        "sw_version": __version__,
    }


def _sensor(topics: Topics, object_id: str, name: str, **fields: Any) -> tuple[str, dict]:
    uid = f"evidence_{safe_topic_id(topics.station)}_{object_id}"
    config = {
        "name": name,
        "unique_id": uid,
        "object_id": uid,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": _device(topics),
        **fields,
    }
    return topics.ha_config(object_id), config


def _station_sensors(topics: Topics) -> list[tuple[str, dict[str, Any]]]:
    state = topics.state
    return [
        _sensor(
            topics,
            "queue_depth",
            "Ingest queue",
            state_topic=state,
            value_template="{{ value_json.queue.total }}",
            unit_of_measurement="recordings",
            state_class="measurement",
            icon="mdi:tray-full",
        ),
        _sensor(
            topics,
            "oldest_open_deadline",
            "Oldest open deadline",
            state_topic=state,
            # HA turns the rendered "None" into unknown: no open deadline.
            value_template="{{ value_json.oldest_open_deadline }}",
            device_class="timestamp",
        ),
        _sensor(
            topics,
            "overdue_count",
            "Overdue recordings",
            state_topic=state,
            value_template="{{ value_json.deadlines_overdue }}",
            unit_of_measurement="recordings",
            state_class="measurement",
            icon="mdi:clock-alert",
        ),
        _sensor(
            topics,
            "spool_free",
            "Spool free",
            state_topic=state,
            value_template="{{ value_json.spool_free_bytes }}",
            device_class="data_size",
            unit_of_measurement="B",
            state_class="measurement",
        ),
    ]


def _unit_sensor(topics: Topics, unit: str, fleet: bool) -> tuple[str, dict[str, Any]]:
    safe = safe_topic_id(unit)
    if fleet:
        fields: dict[str, Any] = {
            "state_topic": topics.unit_ratio(unit),
            "value_template": "{{ value_json.officers_per_recorder }}",
            "json_attributes_topic": topics.unit_ratio(unit),
        }
    else:
        pick = f"{{% for u in value_json.units if u.unit == '{safe}' %}}"
        fields = {
            "state_topic": topics.compliance,
            "value_template": pick + "{{ u.officers_per_recorder }}{% endfor %}",
        }
    return _sensor(
        topics,
        f"unit_{safe}_ratio",
        f"Unit {unit} officers per recorder",
        state_class="measurement",
        icon="mdi:account-group",
        **fields,
    )


def configs(topics: Topics, units: list[str], fleet: bool) -> dict[str, dict[str, Any]]:
    """topic -> discovery config for every sensor of this station."""
    sensors = _station_sensors(topics) + [_unit_sensor(topics, u, fleet) for u in units]
    return dict(sensors)
