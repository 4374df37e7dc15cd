"""The `[mqtt]` and `[fleet]` config sections: the status plane for dashboards."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from agent.config.base import Section


class MqttConfig(Section):
    url: str | None = Field(
        None, description="mqtt://host:port or mqtts://host:port; off if unset."
    )
    topic_prefix: str = Field("evidence", pattern=r"^[A-Za-z0-9_./-]+$", description="Topic root.")
    commands_enabled: bool = Field(False, description="Accept commands on <prefix>/<id>/cmd/#.")
    allowed_clients: list[str] = Field(
        default_factory=list,
        description="If set, only commands whose MQTT 5 user property `client` names one of "
        "these are accepted (MQTT 3.1.1 commands are then refused).",
    )
    unsigned_commands: bool = Field(
        False,
        description="Also accept unsigned command payloads (the v0.1 format, whose sender and "
        "operator are self-declared). Off by default: a command must be an envelope signed "
        "with a console key listed in the operator register (docs/mqtt.md).",
    )
    command_window_seconds: int = Field(
        300,
        ge=10,
        le=3600,
        description="A signed command's time (body `at`) may differ from the station clock by "
        "at most this many seconds while the clock is NTP-synchronised.",
    )
    command_window_unsynced_seconds: int = Field(
        86400,
        ge=10,
        le=7 * 86400,
        description="The same window while the station clock is not synchronised (wider: the "
        "clock may be off); nonces are kept for the wider of the two windows.",
    )
    client_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="MQTT client id (default: evidence-agent-<station.id>).",
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT version; auto = MQTT 5, falling back to 3.1.1 if refused."
    )
    tls_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) for mqtts:// (default: the system CAs)."
    )
    tls_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for mqtts:// brokers that require one."
    )
    tls_key_file: Path | None = Field(
        None, description="Private key (PEM) of tls_cert_file (default: inside tls_cert_file)."
    )
    keepalive_seconds: int = Field(
        30, ge=5, le=3600, description="MQTT keepalive; the broker sends our LWT after 1.5x."
    )
    reconnect_min_seconds: int = Field(
        1, ge=1, le=300, description="First retry delay after a failed connection."
    )
    reconnect_max_seconds: int = Field(
        60, ge=1, le=3600, description="Retry delay cap (doubling from reconnect_min_seconds)."
    )
    heartbeat_seconds: float = Field(
        60.0, ge=1, description="Every retained state topic is re-published this often."
    )
    debounce_seconds: float = Field(
        1.0, ge=0, description="Changes are collected this long before state is re-published."
    )
    poll_seconds: float = Field(
        2.0,
        gt=0,
        description="How often the ledger is checked for changes made by other processes.",
    )
    progress_seconds: float = Field(
        1.0, ge=1, description="Ingest progress is published at most this often per recorder."
    )
    max_inflight: int = Field(
        20, ge=1, le=1000, description="Events published and not yet acknowledged (PUBACK)."
    )
    outbox_max_events: int = Field(
        100_000,
        ge=1000,
        description="Undelivered events kept at most; beyond, the oldest droppable ones go"
        " (counted, with a custody record); integrity.*, deadline.* and archive.failed stay.",
    )
    publish_names: bool = Field(
        False,
        description="Publish officers' names (officer_name) on MQTT; off by default: names are "
        "personal data and retained topics are readable by every subscriber the broker allows.",
    )
    discovery: bool = Field(True, description="Publish Home Assistant MQTT discovery configs.")
    discovery_prefix: str = Field(
        "homeassistant",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Home Assistant discovery prefix (its birth topic is <prefix>/status).",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^mqtts?://[^/]+", v):
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        return v


class FleetConfig(Section):
    aggregate: bool = Field(
        False,
        description="Publish fleet-wide per-unit ratios (<prefix>/units/<unit>/ratio) under "
        "the compliance.ratio rules.",
    )
