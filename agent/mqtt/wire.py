"""The last step before a payload goes on the wire: version, clock and names.

Every MQTT payload of the agent carries `schema` (its version; the numbers are in
docs/mqtt.md, "Payload versions"), has every timestamp in `station.timezone` with its offset
(agent.core.wiretime), and leaves officers' names out unless `mqtt.publish_names = true`: names
are personal data, published retained to anyone who may read the broker. Signed content
(the custody checkpoint) is passed through untouched, so its signature still verifies.
Home Assistant discovery configs are HA's format and do not pass through here.
"""

from __future__ import annotations

from typing import Any

from agent.core.wiretime import localize
from agent.station.context import Context

SCHEMA = 2  # 1 = v0.1.0 (no `schema` field); 2 = aliases removed, `schema`, station times
NAME_KEYS = frozenset({"officer_name"})  # personal names; kept only with mqtt.publish_names
SIGNED_KEYS = frozenset({"checkpoint"})  # signed objects: never re-formatted


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in NAME_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def finish(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` as published: `schema` first, station clock, names only if allowed."""
    tz = ctx.cfg.station.timezone
    body = {k: v if k in SIGNED_KEYS else localize(v, tz) for k, v in payload.items()}
    if not ctx.cfg.mqtt.publish_names:
        body = _strip(body)
    body.pop("schema", None)
    return {"schema": SCHEMA, **body}
