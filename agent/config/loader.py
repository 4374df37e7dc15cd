"""Agent configuration: TOML file + `EVIDENCE_AGENT__SECTION__KEY` overrides, pydantic models.

Every section is a model with `extra="forbid"` so a misspelt key is an error, not silently
ignored, and every field has a description (rendered into config/agent.toml's comments).
Secrets are never here: see agent.station.credentials.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator

from agent.config.archive import ArchiveConfig
from agent.config.base import Section
from agent.config.compliance import ComplianceConfig, TaggingConfig
from agent.core.errors import ConfigError
from drivers.panel_serial import PanelSettings
from drivers.registry import DriverConfig

ENV_FILE = "EVIDENCE_AGENT_CONFIG"
ENV_PREFIX = "EVIDENCE_AGENT__"

DEFAULT_EXTENSIONS = [
    "mp4", "mov", "avi", "ts", "mkv",  # video
    "wav", "amr", "mp3", "aac", "m4a",  # audio
    "jpg", "jpeg",  # photo
]  # fmt: skip


def _default_station_id() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "station"


def _default_data_dir() -> Path:
    # systemd's StateDirectory= hands us the right place; root gets the FHS path; a developer
    # running without config gets a per-user directory so nothing needs sudo.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/evidence-agent")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "evidence-agent"


class StationConfig(Section):
    id: str = Field(
        default_factory=_default_station_id,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Station id used in MQTT topics and the custody log (default: host name).",
    )
    role: Literal["dock", "interview"] = Field("dock", description="dock or interview room.")
    timezone: str = Field(
        "Asia/Shanghai", description="IANA zone of recorder clocks and FAT/exFAT mtimes."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Ledger, keys, spool and local archive live here; the only place the "
        "agent writes to (besides releasing recordings and device commands).",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (use an IANA name)") from exc
        return v


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

    @field_validator("extensions")
    @classmethod
    def _exts(cls, v: list[str]) -> list[str]:
        return [e.lower().lstrip(".") for e in v]


class InventoryConfig(Section):
    file: Path | None = Field(
        None, description="Device inventory CSV; when set, unlisted recorders are quarantined."
    )


class RosterConfig(Section):
    file: Path | None = Field(None, description="Officer roster CSV (for the 1:5 ratio).")


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


class RecordersConfig(Section):
    clock_threshold_seconds: float = Field(
        60.0,
        ge=0,
        description="A recorder clock off by more than this (at dock) is recorded in the custody "
        "log, its recording times are corrected (originals kept), and it is set or reported.",
    )
    set_clock: bool = Field(
        True,
        description="Set a drifted recorder's clock at dock (only while the station clock is "
        "trusted, see station_clock); off: report clock.drift and leave the recorder alone.",
    )
    station_clock: Literal["auto", "trusted", "untrusted"] = Field(
        "auto",
        description="Whether the station's own clock may be used to set recorders: auto = only "
        "while the kernel reports NTP sync (adjtimex); trusted = always (e.g. a GPS clock the "
        "kernel does not flag); untrusted = never.",
    )
    status_refresh_seconds: float = Field(
        60.0,
        gt=0,
        description="How often battery and charging are re-read from a recorder that stays "
        "attached on its control port.",
    )


class CredentialsConfig(Section):
    file: Path | None = Field(
        None,
        description="KEY=VALUE secrets file (mode 0600); $CREDENTIALS_DIRECTORY is read too.",
    )


class CameraConfig(Section):
    id: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Camera id used in file names, events and reports (letters, digits, _ . -).",
    )
    name: str | None = Field(
        None, description="Name burned into the picture (default: the id); Chinese is fine."
    )
    video: str = Field(
        description="Video source: /dev/videoN (V4L2/UVC), rtsp://..., or http(s)://... "
        "(MJPEG, e.g. `simulate interview-room`)."
    )
    audio: str | None = Field(
        None,
        description="Sound for this camera's files (default: interview.microphone): "
        "alsa:<device>, pulse:<source>, http(s)://... (WAV), rtsp://..., or `camera` for the "
        "sound track of the camera's own stream.",
    )
    fps: float = Field(
        25.0,
        gt=0,
        le=120,
        description="Expected frame rate: sets the keyframe interval (and the rate the "
        "OpenCV fallback writes at).",
    )
    video_size: str | None = Field(
        None,
        pattern=r"^\d+x\d+$",
        description="WxH to request from a V4L2 camera (network cameras send their own size).",
    )
    input_format: str | None = Field(
        None, description="V4L2 input format to request, e.g. mjpeg or yuyv422."
    )

    @field_validator("video")
    @classmethod
    def _video(cls, v: str) -> str:
        from agent.rules.sources import parse

        if parse(v).kind not in ("v4l2", "http", "https", "rtsp", "rtsps"):
            raise ValueError("a camera is /dev/videoN, v4l2:/dev/videoN, http(s):// or rtsp://")
        return v

    @field_validator("audio")
    @classmethod
    def _audio(cls, v: str | None) -> str | None:
        if v is not None and v.strip().lower() != "camera":
            from agent.rules.sources import parse

            parse(v)
        return v


class InterviewConfig(Section):
    room: str | None = Field(
        None,
        description="Room name burned into the picture and recorded as the place (采集地点), "
        "e.g. 询问室1 (default: station.id).",
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list, description="The room's cameras; one ffmpeg process each."
    )
    microphone: str | None = Field(
        None,
        description="The room's microphone, recorded into every camera's files: alsa:<device>, "
        "pulse:<source>, http(s)://... (WAV) or rtsp://...",
    )
    segment_seconds: float = Field(
        300.0, ge=2, le=3600, description="Length of a segment file (cut at the next keyframe)."
    )
    gap_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Frames or sound stopped (or frozen, black, silent) this long is a gap; "
        "shorter hiccups are not.",
    )
    read_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Open/read timeout of network sources (-rw_timeout)."
    )
    reconnect_seconds: float = Field(
        1.0, gt=0, le=60, description="Wait between attempts to reach a camera that went away."
    )
    start_timeout_seconds: float = Field(
        15.0, gt=0, le=300, description="A session whose cameras deliver nothing this long fails."
    )
    ffmpeg: str = Field(
        "ffmpeg", description="ffmpeg executable; if missing, OpenCV records video only."
    )
    ffprobe: str = Field("ffprobe", description="ffprobe executable (checks each segment).")
    font: Path | None = Field(
        None, description="Font file with CJK glyphs for the overlay (default: fc-match zh-cn)."
    )
    video_preset: str = Field(
        "veryfast", description="libx264 preset (ultrafast..veryslow): CPU against file size."
    )
    video_crf: int = Field(23, ge=0, le=51, description="libx264 quality (lower is better).")
    audio_bitrate_kbps: int = Field(96, ge=16, le=512, description="AAC bit rate.")
    monitor_fps: float = Field(
        5.0, gt=0, le=10, description="Pictures per second OpenCV checks (frozen, black)."
    )
    black_level: float = Field(
        12.0, ge=0, le=255, description="Mean brightness (0-255) below which a picture is black."
    )
    freeze_diff: float = Field(
        0.2,
        ge=0,
        le=50,
        description="Mean pixel change (0-255) below which two pictures are the same (frozen).",
    )
    silence_dbfs: float = Field(
        -90.0, ge=-120, le=0, description="Sound below this level is a dead microphone."
    )
    thumbnail_seconds: float = Field(
        10.0, gt=0, description="How often each camera's thumbnail is refreshed."
    )
    capture_dir: Path | None = Field(
        None, description="Where segments are written (default: <data_dir>/interview)."
    )
    panel: PanelSettings | None = Field(None, description="The serial control panel, if any.")

    @field_validator("cameras")
    @classmethod
    def _unique(cls, v: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dupes)}")
        return v

    @field_validator("video_preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                   "slower", "veryslow")  # fmt: skip
        if v not in presets:
            raise ValueError(f"must be one of {', '.join(presets)}")
        return v


class WatchdogConfig(Section):
    default_deadline_seconds: float = Field(
        300.0,
        gt=0,
        description="A supervised loop silent this long (beyond its own wait) counts as hung:"
        " WATCHDOG=1 stops and systemd restarts the agent (needs WatchdogSec in the unit).",
    )
    deadlines: dict[str, float] = Field(
        default_factory=lambda: {"archive": 900.0},
        description="Per-loop deadlines in seconds, by loop name without its -N suffix"
        " (ingest, archive, housekeep, checkpoint, recover, compliance, detect, mqtt-outbox,"
        " mqtt-state, mqtt-commands, inventory, driver-<label>).",
    )


class AgentConfig(Section):
    station: StationConfig = Field(default_factory=StationConfig)  # type: ignore[arg-type]
    detect: DetectConfig = Field(default_factory=DetectConfig)  # type: ignore[arg-type]
    ingest: IngestConfig = Field(default_factory=IngestConfig)  # type: ignore[arg-type]
    drivers: list[DriverConfig] = Field(
        default_factory=list, description="Hardware drivers, each chosen by `type`."
    )
    inventory: InventoryConfig = Field(default_factory=InventoryConfig)  # type: ignore[arg-type]
    roster: RosterConfig = Field(default_factory=RosterConfig)  # type: ignore[arg-type]
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)  # type: ignore[arg-type]
    tagging: TaggingConfig = Field(default_factory=TaggingConfig)  # type: ignore[arg-type]
    mqtt: MqttConfig = Field(default_factory=MqttConfig)  # type: ignore[arg-type]
    fleet: FleetConfig = Field(default_factory=FleetConfig)  # type: ignore[arg-type]
    archive: ArchiveConfig = Field(default_factory=ArchiveConfig)  # type: ignore[arg-type]
    credentials: CredentialsConfig = Field(default_factory=CredentialsConfig)  # type: ignore[arg-type]
    recorders: RecordersConfig = Field(default_factory=RecordersConfig)  # type: ignore[arg-type]
    interview: InterviewConfig = Field(default_factory=InterviewConfig)  # type: ignore[arg-type]
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)  # type: ignore[arg-type]

    # Derived paths, so no module builds them on its own.
    @property
    def spool_dir(self) -> Path:
        return self.ingest.spool_dir or self.station.data_dir / "spool"

    @property
    def ledger_path(self) -> Path:
        return self.station.data_dir / "ledger.sqlite3"

    @property
    def locks_dir(self) -> Path:
        # Next to the ledger whose `copying` rows they guard (see agent.ledger.copylocks).
        return self.station.data_dir / "locks"

    @property
    def keys_dir(self) -> Path:
        return self.station.data_dir / "keys"

    @property
    def interview_dir(self) -> Path:
        return self.interview.capture_dir or self.station.data_dir / "interview"

    @property
    def archive_url(self) -> str:
        return self.archive.url or f"file://{(self.station.data_dir / 'archive').resolve()}"


def _parse_env_value(raw: str) -> Any:
    """Env values are TOML values when they parse as one (`true`, `5`, `["a"]`), else strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if path:
            node[path[-1]] = _parse_env_value(raw)
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt? see config/agent.toml for the valid keys)"
        problems.append((key, msg))
    return problems


def resolve_path(cli_path: str | Path | None) -> Path | None:
    if cli_path:
        return Path(cli_path)
    env = os.environ.get(ENV_FILE)
    return Path(env) if env else None


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> AgentConfig:
    """Load config from `path` (or $EVIDENCE_AGENT_CONFIG), apply env overrides, validate.

    No file at all is fine: the embedded defaults run a complete agent.
    """
    env = os.environ if environ is None else environ
    file = resolve_path(path)
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([("(file)", f"{file} does not exist")], str(file)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([("(file)", f"cannot read {file}: {exc}")], str(file)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([("(syntax)", str(exc))], str(file)) from None
    data = _merge(data, env_overrides(env))
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), str(file) if file else None) from None
    if file is not None:
        cfg = _relative_to(cfg, file.parent)
    return cfg


def _relative_to(cfg: AgentConfig, base: Path) -> AgentConfig:
    """Relative paths in a config file are relative to that file, as users expect."""

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    cfg.station.data_dir = fix(cfg.station.data_dir) or cfg.station.data_dir
    cfg.detect.mount_roots = [fix(p) or p for p in cfg.detect.mount_roots]
    cfg.ingest.spool_dir = fix(cfg.ingest.spool_dir)
    cfg.inventory.file = fix(cfg.inventory.file)
    cfg.roster.file = fix(cfg.roster.file)
    cfg.compliance.calendar_overrides = fix(cfg.compliance.calendar_overrides)
    cfg.credentials.file = fix(cfg.credentials.file)
    cfg.mqtt.tls_ca_file = fix(cfg.mqtt.tls_ca_file)
    cfg.mqtt.tls_cert_file = fix(cfg.mqtt.tls_cert_file)
    cfg.mqtt.tls_key_file = fix(cfg.mqtt.tls_key_file)
    cfg.archive.ca_bundle = fix(cfg.archive.ca_bundle)
    for driver in cfg.drivers:
        driver.resolve_paths(base)
    cfg.interview.font = fix(cfg.interview.font)
    cfg.interview.capture_dir = fix(cfg.interview.capture_dir)
    return cfg
