"""Keeping Home Assistant's retained discovery configs in step with the station.

The broker keeps discovery configs retained, so a device or entity that goes away stays in
Home Assistant until its config is changed. `HaSync` subscribes to this station's own
discovery topics and learns what is retained there (also what an earlier run published), and
each pass of the publisher then:

* republishes a device whose components changed (a unit no longer seen) without the
  component that went away, which is how HA removes an entity of a device;
* clears (empty retained payload) the config of a device that went away (a recorder no
  longer reported), or of every device when `mqtt.discovery` is switched off;
* moves v0.1.0's single-component configs (`<prefix>/sensor/evidence_<station>/<obj>/config`)
  over as HA's docs describe: `{"migrate_discovery": true}` on the old topic, the device
  config, then an empty retained payload on the old topic, so no entity appears twice.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

import paho.mqtt.client as mqtt

from agent.mqtt import ha_devices
from agent.mqtt.topics import Topics

logger = logging.getLogger(__name__)

MIGRATE = json.dumps({"migrate_discovery": True})
_OBJECT = re.compile(r"[A-Za-z0-9_.-]{1,100}")
Raw = tuple[str, str, bool]  # topic, payload, retain


def _platforms(payload: bytes) -> dict[str, str]:
    """component id -> platform of a retained device config (real components only)."""
    try:
        config = json.loads(payload)
        comps = config.get("components") or {}
        return {
            str(cid): str(c["platform"])
            for cid, c in comps.items()
            if isinstance(c, dict) and "platform" in c and len(c) > 1
        }
    except (ValueError, AttributeError, KeyError, TypeError):
        return {}


class HaSync:
    def __init__(self, topics: Topics, wake: threading.Event) -> None:
        self.topics = topics
        self.wake = wake
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, str]] = {}  # device topic -> component -> platform
        self._legacy: set[str] = set()
        self._found = False  # retained configs arrived since the last pass

    @property
    def filters(self) -> list[str]:
        return [ha_devices.device_filter(self.topics), ha_devices.legacy_filter(self.topics)]

    def on_message(self, msg: mqtt.MQTTMessage) -> None:  # paho's thread
        """Retained configs found at subscribe time (ours, earlier runs or v0.1.0)."""
        if not msg.retain or not msg.payload:
            return
        # Validated at the edge: only an object id of ours can name a topic we clear.
        if not _OBJECT.fullmatch(msg.topic.split("/")[-2]) or len(msg.topic) > 256:
            return
        with self._lock:
            if msg.topic.startswith(f"{self.topics.discovery_prefix}/device/"):
                self._known.setdefault(msg.topic, _platforms(bytes(msg.payload)))
            else:
                self._legacy.add(msg.topic)
            self._found = True
        self.wake.set()

    def pending(self) -> bool:
        with self._lock:
            return self._found

    def plan(
        self, configs: dict[str, dict[str, Any]]
    ) -> tuple[list[Raw], dict[str, dict[str, Any]], list[Raw]]:
        """(sent before, device configs to publish, sent after) for this pass. The station's
        own state decides the configs; what was retained before only decides what to clear."""
        with self._lock:
            legacy, self._legacy = sorted(self._legacy), set()
            self._found = False
            known, self._known = self._known, {}
            out: dict[str, dict[str, Any]] = {}
            for topic, config in configs.items():
                gone = {
                    cid: {"platform": platform}
                    for cid, platform in known.get(topic, {}).items()
                    if cid not in config["components"]
                }
                out[topic] = {**config, "components": {**config["components"], **gone}}
                self._known[topic] = {cid: c["platform"] for cid, c in config["components"].items()}
        before = [(t, MIGRATE, False) for t in legacy] if configs else []
        after = [(t, "", True) for t in sorted(set(known) - set(configs))]
        after += [(t, "", True) for t in legacy]
        for topic, _p, _r in after:
            logger.info("MQTT: clearing the Home Assistant discovery config on %s", topic)
        return before, configs, after
