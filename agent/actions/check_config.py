"""Checks beyond the schema that `check-config` runs: files exist and parse, rules validate."""

from __future__ import annotations

from agent.config.loader import AgentConfig


def deep_check(cfg: AgentConfig) -> list[tuple[str, str]]:
    problems = _file_problems(cfg) + _driver_problems(cfg)
    problems += _check_assignment_rules(cfg)
    if cfg.station.role == "interview":
        from agent.interview.checks import interview_problems

        problems += interview_problems(cfg)
    problems += _mqtt_problems(cfg)
    problems += _archive_problems(cfg)
    problems += _register_problems(cfg)
    from agent.station import kek

    problems += kek.problems(cfg)
    return problems


def _register_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """A broken operator register refuses every gated action: say so before it bites."""
    if cfg.operators.file is None:
        return []
    from agent.access.register import RegisterError, load_register

    try:
        load_register(cfg.operators.file)
    except RegisterError as exc:
        return [("operators.file", f"{exc} (gated actions would be refused)")]
    return []


def _file_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """Files the config names: calendar overrides, inventory, roster, credentials."""
    from agent.rules.roster import RosterError, load_inventory, load_roster
    from agent.rules.workcal import CalendarError, load_overrides

    problems: list[tuple[str, str]] = []
    if cfg.compliance.calendar_overrides is not None:
        try:
            load_overrides(cfg.compliance.calendar_overrides)
        except CalendarError as exc:
            problems.append(("compliance.calendar_overrides", str(exc)))
    for key, path, loader in (
        ("inventory.file", cfg.inventory.file, load_inventory),
        ("roster.file", cfg.roster.file, load_roster),
    ):
        if path is None:
            continue
        try:
            loader(path)
        except (RosterError, OSError) as exc:
            problems.append((key, str(exc)))
    if cfg.credentials.file is not None and not cfg.credentials.file.is_file():
        problems.append(("credentials.file", f"{cfg.credentials.file} does not exist"))
    return problems


def _driver_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """USB profiles the drivers name must load."""
    from drivers.usb_profile import ProfileError, load_profile

    problems: list[tuple[str, str]] = []
    for i, driver in enumerate(cfg.drivers):
        profile = getattr(driver, "profile", None)
        if profile is None:
            continue
        try:
            load_profile(profile)
        except ProfileError as exc:
            problems.append((f"drivers.{i}.profile", str(exc)))
    return problems


def _mqtt_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    m = cfg.mqtt
    problems: list[tuple[str, str]] = []
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(m, key)
        if path is not None and not path.is_file():
            problems.append((f"mqtt.{key}", f"{path} does not exist"))
    if m.reconnect_max_seconds < m.reconnect_min_seconds:
        problems.append(("mqtt.reconnect_max_seconds", "must be >= mqtt.reconnect_min_seconds"))
    if m.url and cfg.station.id == "units":
        # <prefix>/units/<unit>/ratio is the fleet topic; a station named "units" would collide.
        problems.append(("station.id", "'units' is reserved in MQTT topics; choose another id"))
    return problems


def _check_assignment_rules(cfg: AgentConfig) -> list[tuple[str, str]]:
    """Each [[tagging.assign]] rule's fields pass the same validation as a tag would."""
    if not cfg.tagging.assign:
        return []
    from agent.core.errors import TagError
    from agent.rules.roster import RosterError, load_roster
    from agent.tagging.metadata import Validator

    officer_ids = None
    if cfg.roster.file is not None:
        try:
            officer_ids = {o.officer_id for o in load_roster(cfg.roster.file)}
        except (RosterError, OSError):
            pass  # reported above as roster.file; the officers are not checked then
    validator = Validator(cfg, officer_ids)
    problems = []
    for i, rule in enumerate(cfg.tagging.assign):
        try:
            validator.validate(rule.fields)
        except TagError as exc:
            problems.append((f"tagging.assign.{i}.fields", str(exc)))
        if rule.time_from and rule.time_to and rule.time_from >= rule.time_to:
            problems.append((f"tagging.assign.{i}", "time_from must be before time_to"))
    return problems


def _archive_problems(cfg: AgentConfig) -> list[tuple[str, str]]:
    """S3 settings that can be judged without contacting the store."""
    problems: list[tuple[str, str]] = []
    a = cfg.archive
    if a.ca_bundle is not None and not a.ca_bundle.is_file():
        problems.append(("archive.ca_bundle", f"{a.ca_bundle} does not exist"))
    if a.is_s3:
        from agent.archive.s3.client import s3_secrets
        from agent.core.errors import CredentialsError

        try:
            s3_secrets(cfg)
        except CredentialsError as exc:
            problems.append(("credentials.file", str(exc)))
    elif a.endpoint_url is not None:
        problems.append(("archive.endpoint_url", "set, but archive.url is not s3://..."))
    return problems


def gate_warnings(cfg: AgentConfig) -> list[str]:
    """check-config warnings: settings that are valid but would refuse everything they enable."""
    if cfg.mqtt.url and cfg.mqtt.commands_enabled and cfg.operators.file is None:
        return [
            "mqtt.commands_enabled is on but no operator register is configured "
            "(operators.file): every command would be refused, since a console key maps to an "
            "operator in that register (docs/access.md)"
        ]
    return []
