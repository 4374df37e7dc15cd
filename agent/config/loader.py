"""Agent configuration: TOML file + `EVIDENCE_AGENT__SECTION__KEY` overrides, pydantic models.

Every section is a model with `extra="forbid"` so a misspelt key is an error, not silently
ignored, and every field has a description (rendered into config/agent.toml's comments).
Secrets are never here: see agent.station.credentials.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from agent.config.access import AccessConfig, ApiConfig, OperatorsConfig
from agent.config.archive import ArchiveConfig
from agent.config.base import Section
from agent.config.compliance import ComplianceConfig, TaggingConfig
from agent.config.console import ConsoleConfig
from agent.config.crypto import CryptoConfig
from agent.config.custody import CustodyConfig
from agent.config.ingest import DetectConfig, IngestConfig
from agent.config.interview import InterviewConfig
from agent.config.mqtt import FleetConfig, MqttConfig
from agent.config.recorders import InventoryConfig, RecordersConfig, RosterConfig
from agent.config.station import CredentialsConfig, StationConfig
from agent.config.watchdog import WatchdogConfig
from agent.core.errors import ConfigError
from drivers.registry import DriverConfig

ENV_FILE = "EVIDENCE_AGENT_CONFIG"
ENV_PREFIX = "EVIDENCE_AGENT__"


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
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)  # type: ignore[arg-type]
    api: ApiConfig = Field(default_factory=ApiConfig)  # type: ignore[arg-type]
    access: AccessConfig = Field(default_factory=AccessConfig)  # type: ignore[arg-type]
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)  # type: ignore[arg-type]
    custody: CustodyConfig = Field(default_factory=CustodyConfig)  # type: ignore[arg-type]
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)  # type: ignore[arg-type]
    crypto: CryptoConfig = Field(default_factory=CryptoConfig)  # type: ignore[arg-type]

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
        from agent.config.envcheck import blame

        problems, source = blame(_problems(exc), env, str(file) if file else None)
        raise ConfigError(problems, source) from None
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
    cfg.operators.file = fix(cfg.operators.file)
    cfg.api.socket = fix(cfg.api.socket) or cfg.api.socket
    cfg.compliance.calendar_overrides = fix(cfg.compliance.calendar_overrides)
    cfg.credentials.file = fix(cfg.credentials.file)
    cfg.custody.pubkey_file = fix(cfg.custody.pubkey_file)
    cfg.crypto.key_file = fix(cfg.crypto.key_file)
    cfg.crypto.recovery_public_key = fix(cfg.crypto.recovery_public_key)
    cfg.mqtt.tls_ca_file = fix(cfg.mqtt.tls_ca_file)
    cfg.mqtt.tls_cert_file = fix(cfg.mqtt.tls_cert_file)
    cfg.mqtt.tls_key_file = fix(cfg.mqtt.tls_key_file)
    cfg.archive.ca_bundle = fix(cfg.archive.ca_bundle)
    for driver in cfg.drivers:
        driver.resolve_paths(base)
    cfg.interview.font = fix(cfg.interview.font)
    cfg.interview.capture_dir = fix(cfg.interview.capture_dir)
    return cfg
