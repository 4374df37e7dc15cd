"""Home Assistant device-based MQTT discovery payloads (what HA's current MQTT docs expect).

One retained config per device on `<discovery_prefix>/device/<node>/<object>/config`, with
`device`, `origin`, the shared availability (the station's `online`/`offline`) and its
entities under `components`, each with `platform`, `unique_id` and `default_entity_id` (HA
dropped `object_id`). Devices:

* the station: ingest queue, oldest open deadline, overdue recordings, spool free, one
  officers-per-recorder ratio per unit, and the alarms as binary sensors (`problem`): spool
  low, archive failing, clock unsynchronised, deadlines overdue, recorders not docked;
* each recorder this station reports: battery, charging, docked, files and bytes pending,
  last docked.

HA wants ids of `[A-Za-z0-9_-]`; station ids may hold `.` and unit ids are often Chinese, so
`ha_id` derives one (replace, then a hash of the original so two ids never collide); names
stay as they are (`Unit 执法一大队 officers per recorder`). Templates name the unit by its real
id, JSON-quoted, so they match the payload.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from agent import __version__
from agent.mqtt.topics import Topics

ORIGIN = {
    "name": "evidence-agent",
    "sw_version": __version__,
    "support_url": "https://evidence-agent.invalid/docs/mqtt.md",
}
_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
Components = dict[str, dict[str, Any]]


def ha_id(text: str) -> str:
    """A Home Assistant id (`[A-Za-z0-9_-]+`) for `text`: itself when already valid, else the
    valid characters plus a stable hash of the original (distinct for distinct inputs)."""
    if _SAFE.match(text):
        return text
    kept = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{kept}_{digest}" if kept else f"x{digest}"


def entity_slug(text: str) -> str:
    """The object part of an entity id: lower case, digits and `_` only."""
    return ha_id(text).lower().replace("-", "_")


def node(topics: Topics) -> str:
    return f"evidence_{ha_id(topics.station)}"


def device_topic(topics: Topics, obj: str) -> str:
    return f"{topics.discovery_prefix}/device/{node(topics)}/{obj}/config"


def device_filter(topics: Topics) -> str:
    return f"{topics.discovery_prefix}/device/{node(topics)}/+/config"


def legacy_filter(topics: Topics) -> str:
    """Where v0.1.0 published one config per sensor (cleared after the move)."""
    from agent.core.ids import safe_topic_id

    return (
        f"{topics.discovery_prefix}/sensor/{safe_topic_id(f'evidence_{topics.station}')}/+/config"
    )


def _component(prefix: str, key: str, platform: str, name: str, **fields: Any) -> tuple[str, dict]:
    uid = f"{prefix}_{key}"
    return key, {
        "platform": platform,
        "name": name,
        "unique_id": uid,
        "default_entity_id": f"{platform}.{entity_slug(uid)}",
        **fields,
    }


def _alarm(prefix: str, key: str, name: str, topic: str, condition: str) -> tuple[str, dict]:
    return _component(
        prefix,
        key,
        "binary_sensor",
        name,
        state_topic=topic,
        value_template=f"{{{{ 'ON' if {condition} else 'OFF' }}}}",
        device_class="problem",
    )


def _config(topics: Topics, device: dict[str, Any], components: Components) -> dict[str, Any]:
    return {
        "device": device,
        "origin": ORIGIN,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "components": components,
    }


def _unit_ratio(topics: Topics, prefix: str, unit: str, fleet: bool) -> tuple[str, dict]:
    if fleet:
        fields: dict[str, Any] = {
            "state_topic": topics.unit_ratio(unit),
            "value_template": "{{ value_json.officers_per_recorder }}",
            "json_attributes_topic": topics.unit_ratio(unit),
        }
    else:
        quoted = json.dumps(unit, ensure_ascii=False)
        fields = {
            "state_topic": topics.compliance,
            "value_template": f"{{% for u in value_json.units if u.unit == {quoted} %}}"
            "{{ u.officers_per_recorder }}{% endfor %}",
        }
    return _component(
        prefix,
        f"unit_{ha_id(unit)}_ratio",
        "sensor",
        f"Unit {unit} officers per recorder",
        state_class="measurement",
        icon="mdi:account-group",
        **fields,
    )


def station_components(
    topics: Topics, units: list[str], fleet: bool, spool_reserve: int
) -> Components:
    p, state, comp = node(topics), topics.state, topics.compliance
    items = [
        _component(
            p,
            "queue_depth",
            "sensor",
            "Ingest queue",
            state_topic=state,
            value_template="{{ value_json.queue.total }}",
            unit_of_measurement="recordings",
            state_class="measurement",
            icon="mdi:tray-full",
        ),
        _component(
            p,
            "oldest_open_deadline",
            "sensor",
            "Oldest open deadline",
            state_topic=state,
            value_template="{{ value_json.oldest_open_deadline }}",
            device_class="timestamp",
        ),
        _component(
            p,
            "overdue_count",
            "sensor",
            "Overdue recordings",
            state_topic=state,
            value_template="{{ value_json.deadlines_overdue }}",
            unit_of_measurement="recordings",
            state_class="measurement",
            icon="mdi:clock-alert",
        ),
        _component(
            p,
            "spool_free",
            "sensor",
            "Spool free",
            state_topic=state,
            value_template="{{ value_json.spool_free_bytes }}",
            device_class="data_size",
            unit_of_measurement="B",
            state_class="measurement",
        ),
        _alarm(
            p, "spool_low", "Spool low", state, f"value_json.spool_free_bytes < {spool_reserve}"
        ),
        _alarm(
            p,
            "archive_failing",
            "Archive failing",
            state,
            "(value_json.upload_backlog.failing or 0) > 0",
        ),
        _alarm(
            p, "clock_unsynchronised", "Clock unsynchronised", state, "not value_json.clock_synced"
        ),
        _alarm(
            p, "deadlines_overdue", "Deadlines overdue", state, "value_json.deadlines_overdue > 0"
        ),
        _alarm(
            p,
            "recorders_not_docked",
            "Recorders not docked",
            comp,
            "value_json.recorders_not_docked > 0",
        ),
    ]
    items += [_unit_ratio(topics, p, u, fleet) for u in units]
    return dict(items)


def station_config(
    topics: Topics, units: list[str], fleet: bool, spool_reserve: int
) -> dict[str, Any]:
    device = {
        "identifiers": [node(topics)],
        "name": f"Evidence station {topics.station}",
        "manufacturer": "evidence-agent",
        "model": "dock/interview station",
        "sw_version": __version__,
    }
    return _config(topics, device, station_components(topics, units, fleet, spool_reserve))


def recorder_object(serial: str) -> str:
    return f"recorder_{ha_id(serial)}"


def recorder_config(topics: Topics, serial: str, vendor: str) -> dict[str, Any]:
    p = f"{node(topics)}_{recorder_object(serial)}"
    state = topics.recorder(serial)
    items = [
        _component(
            p,
            "battery",
            "sensor",
            "Battery",
            state_topic=state,
            value_template="{{ value_json.battery }}",
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
        ),
        _component(
            p,
            "charging",
            "binary_sensor",
            "Charging",
            state_topic=state,
            value_template="{{ 'ON' if value_json.charging else 'OFF' }}",
            device_class="battery_charging",
        ),
        _component(
            p,
            "docked",
            "binary_sensor",
            "Docked",
            state_topic=state,
            value_template="{{ 'ON' if value_json.docked else 'OFF' }}",
            device_class="plug",
        ),
        _component(
            p,
            "files_pending",
            "sensor",
            "Files pending",
            state_topic=state,
            value_template="{{ value_json.files_pending }}",
            unit_of_measurement="files",
            state_class="measurement",
        ),
        _component(
            p,
            "bytes_pending",
            "sensor",
            "Bytes pending",
            state_topic=state,
            value_template="{{ value_json.bytes_pending }}",
            device_class="data_size",
            unit_of_measurement="B",
            state_class="measurement",
        ),
        _component(
            p,
            "last_docked",
            "sensor",
            "Last docked",
            state_topic=state,
            value_template="{{ value_json.last_docked }}",
            device_class="timestamp",
        ),
    ]
    device = {
        "identifiers": [p],
        "name": f"Recorder {serial}",
        "manufacturer": vendor,
        "model": "body-worn recorder",
        "serial_number": serial,
        "via_device": node(topics),
    }
    return _config(topics, device, dict(items))
