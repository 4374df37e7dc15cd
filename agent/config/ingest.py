"""The `[detect]` and `[ingest]` config sections: where recorders appear and what is evidence."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from agent.config.base import Section

DEFAULT_EXTENSIONS = [
    "mp4", "mov", "avi", "ts", "mkv",  # video
    "wav", "amr", "mp3", "aac", "m4a",  # audio
    "jpg", "jpeg",  # photo
]  # fmt: skip


class DetectConfig(Section):
    mount_roots: list[Path] = Field(
        default_factory=lambda: [Path("/media/evidence")],
        description="Directories whose entries are recorder volumes (mount points or dirs).",
    )
    settle_seconds: float = Field(
        5.0, ge=0, description="A volume is ready once its file list is stable this long."
    )
    rescan_seconds: float = Field(
        30.0, gt=0, description="Periodic full rescan reconciling volumes with the ledger."
    )
    poll_seconds: float = Field(
        1.0, gt=0, description="How often mountinfo and pending volumes are polled."
    )
    accept_unknown_usb: bool = Field(
        False,
        description="Mount USB storage that matches no recorder profile too (install-systemd "
        "renders it into the udev rule); everything on it is quarantined.",
    )


class NamingPattern(Section):
    name: str = Field(description="Pattern name, recorded as the time source.")
    regex: str = Field(
        description="Python regex matched against the file name; named groups serial, "
        "officer, start (timestamp), seq."
    )
    time_format: str = Field("%Y%m%d%H%M%S", description="strptime format of the `start` group.")
    utc: bool = Field(False, description="The start time is UTC (else station-local).")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from exc
        return v


DEFAULT_PATTERNS = [
    NamingPattern(
        name="zfy",
        regex=r"^(?P<serial>[A-Za-z0-9]+)_(?P<officer>[A-Za-z0-9]+)_(?P<start>\d{14})_"
        r"(?P<seq>\d+)\.[A-Za-z0-9]+$",
    ),
    NamingPattern(
        name="axis",
        regex=r"^(?P<officer>[A-Za-z0-9-]+)_(?P<serial>[A-Za-z0-9]+)_(?P<start>\d{8}T\d{6})Z?"
        r"(?:_[^.]*)?\.[A-Za-z0-9]+$",
        time_format="%Y%m%dT%H%M%S",
        utc=True,
    ),
    # Interview-room segments written by agent.interview: <station>-<camera>_<start>_<seq>.ts
    NamingPattern(
        name="interview",
        regex=r"^(?P<serial>[A-Za-z0-9.-]+)_(?P<start>\d{14})_(?P<seq>\d+)\.ts$",
    ),
]


class IngestConfig(Section):
    spool_dir: Path | None = Field(None, description="Spool (default: <data_dir>/spool).")
    release_after: Literal["never", "spooled", "archived"] = Field(
        "archived", description="When a recording may be erased from the recorder."
    )
    max_parallel: int = Field(2, ge=1, le=32, description="Recorders ingested at once.")
    spool_reserve_bytes: int = Field(
        1 << 30, ge=0, description="Free space kept on the spool; ingest stops before it."
    )
    max_file_bytes: int = Field(
        64 << 30, gt=0, description="Files above this size are refused with a reason."
    )
    extensions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXTENSIONS),
        description="Evidence file extensions (case-insensitive, no dot).",
    )
    naming_patterns: list[NamingPattern] = Field(
        default_factory=lambda: list(DEFAULT_PATTERNS),
        description="File-name patterns, tried in order.",
    )
    verify_reread: bool = Field(
        True, description="Re-read each copy from disk and compare SHA-256 before `spooled`."
    )
    chunk_bytes: int = Field(
        4 << 20, ge=64 << 10, le=64 << 20, description="Read/write block size."
    )
    retry_seconds: float = Field(30.0, gt=0, description="Delay before a failed copy retries.")
    stall_seconds: float = Field(
        120.0,
        gt=0,
        description="A recorder that gives no data for this long while being read hangs (its"
        " medium or USB link): that recording fails and the recorder is left alone until it is"
        " docked again, while the other bays and the watchdog pings go on. Keep it below"
        " watchdog.deadlines for ingest (default 300 s).",
    )

    @field_validator("extensions")
    @classmethod
    def _exts(cls, v: list[str]) -> list[str]:
        return [e.lower().lstrip(".") for e in v]
