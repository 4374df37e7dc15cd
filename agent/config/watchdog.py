"""The `[watchdog]` config section: how long each supervised loop may stay silent."""

from __future__ import annotations

from pydantic import Field

from agent.config.base import Section


class WatchdogConfig(Section):
    default_deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="A supervised loop silent this long (beyond its own wait) counts as hung:"
        " WATCHDOG=1 stops and systemd restarts the agent (needs WatchdogSec in the unit).",
    )
    deadlines: dict[str, float] = Field(
        default_factory=lambda: {"archive": 900.0, "archive-maintain": 900.0},
        description="Per-loop deadlines in seconds, by loop name without its -N suffix"
        " (ingest, archive, archive-maintain, release, housekeep, checkpoint, recover,"
        " compliance, detect, mqtt-outbox,"
        " mqtt-state, mqtt-commands, inventory, driver-<label>).",
    )
