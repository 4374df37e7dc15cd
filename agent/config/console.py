"""The `[console]` config section: the dock console (`evidence-agent console`, docs/console.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from agent.config.base import Section


class ConsoleConfig(Section):
    bind: str = Field(
        "127.0.0.1",
        description="Address the console's web server listens on. Loopback only, unless "
        "tls_cert_file and tls_key_file are set (then any address).",
    )
    port: int = Field(8470, ge=1, le=65535, description="TCP port of the console.")
    session_timeout_seconds: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="An officer is logged out after this many seconds without a click or key.",
    )
    login: str = Field(
        "evidence-console",
        description="Unix login the console service runs as. The daemon's gate lets only this "
        "login act as the `console` channel (for an officer it verified by PIN).",
    )
    lang: Literal["zh", "en"] = Field("zh", description="Language of the console's pages.")
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate: serve HTTPS (required to bind a non-loopback address)."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    pin_backoff_seconds: float = Field(
        2.0,
        gt=0,
        description="Wait after the first wrong PIN of an officer; doubles with each further "
        "wrong PIN (no hard lock-out). An admin resets it: `evidence-agent operators unlock`.",
    )
    pin_backoff_max_seconds: float = Field(
        900.0, gt=0, description="Longest wait between two PIN attempts of one officer."
    )
    poll_seconds: float = Field(
        0.1,
        gt=0,
        le=10,
        description="How often the console asks the daemon for bay state (one request serves "
        "every open page).",
    )

    @model_validator(mode="after")
    def _loopback_or_tls(self) -> ConsoleConfig:
        try:
            loopback = self.bind == "localhost" or ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not (self.tls_cert_file and self.tls_key_file):
            raise ValueError(
                f"console.bind = {self.bind!r} is not a loopback address: set "
                "console.tls_cert_file and console.tls_key_file to serve it over HTTPS, or bind "
                "127.0.0.1"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("console.tls_cert_file and console.tls_key_file go together")
        return self
