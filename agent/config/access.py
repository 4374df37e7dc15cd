"""The `[operators]` and `[api]` config sections: who may act, where the gate listens."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from agent.config.base import Section


def default_socket() -> Path:
    # systemd's RuntimeDirectory= hands the daemon its place; root gets the FHS path; a
    # developer running without config gets a per-user one. A CLI run by an operator (another
    # uid) reads the same config, so deployed stations name the socket explicitly or use /run.
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0]) / "api.sock"
    if os.geteuid() == 0 or Path("/run/evidence-agent").is_dir():
        return Path("/run/evidence-agent/api.sock")
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/evidence-agent-{os.geteuid()}"
    return Path(base) / "evidence-agent" / "api.sock"


class OperatorsConfig(Section):
    file: Path | None = Field(
        None,
        description="Operator register CSV (officer_id,login,name,roles,cert_no,active; see "
        "docs/access.md). Unset: every gated action (tag, accept, reject, export, audit, "
        "interview start/stop/mark) is refused. A broken file refuses them too (fail closed).",
    )


class ApiConfig(Section):
    socket: Path = Field(
        default_factory=default_socket,
        description="Unix socket of the daemon's gate (`<runtime dir>/api.sock`); the CLI sends "
        "gated actions here. Default: $RUNTIME_DIRECTORY/api.sock, /run/evidence-agent/api.sock "
        "for root.",
    )
    group: str = Field(
        "evidence",
        description="Group that owns the socket (mode 0660): operators' logins must be in it.",
    )


class AccessConfig(Section):
    two_person_rule: bool = Field(
        True,
        description="Supervised retrieval (调阅): an export request needs the approval of a "
        "supervisor other than the requester before `export run`. Off: a custodian may run "
        "own requests (and the one-step `export ID... --to DIR`) without approval, except "
        "when any recording is confidential (metadata `confidentiality` other than `none`).",
    )
    approval_window_hours: float = Field(
        24.0,
        ge=0,
        description="An approval may be executed (`export run REQ`) once, within this many "
        "hours of the approval; afterwards a new request is needed. 0 makes approvals expire "
        "at once (suspends retrievals).",
    )
