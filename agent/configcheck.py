"""Checks beyond the schema that `check-config` runs: files exist and parse."""

from __future__ import annotations

from agent.config import AgentConfig


def deep_check(cfg: AgentConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if cfg.compliance.calendar_overrides is not None:
        from agent.workcal import CalendarError, load_overrides

        try:
            load_overrides(cfg.compliance.calendar_overrides)
        except CalendarError as exc:
            problems.append(("compliance.calendar_overrides", str(exc)))
    if cfg.inventory.file is not None:
        from agent.roster import RosterError, load_inventory

        try:
            load_inventory(cfg.inventory.file)
        except (RosterError, OSError) as exc:
            problems.append(("inventory.file", str(exc)))
    if cfg.roster.file is not None:
        from agent.roster import RosterError, load_roster

        try:
            load_roster(cfg.roster.file)
        except (RosterError, OSError) as exc:
            problems.append(("roster.file", str(exc)))
    if cfg.credentials.file is not None and not cfg.credentials.file.is_file():
        problems.append(("credentials.file", f"{cfg.credentials.file} does not exist"))
    if cfg.station.role == "interview":
        from agent.interview.checks import interview_problems

        problems += interview_problems(cfg)
    return problems
