"""What every gate request handler shares: the server it runs in, checked parameters."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Protocol

from agent.access.gate import Register
from agent.core.errors import AgentError
from agent.ledger import recordings as rec
from agent.station.context import Context

MAX_REFS = 10_000


class Server(Protocol):
    ctx: Context
    register: Register


class BadRequest(AgentError):
    exit_code = 64  # EX_USAGE


def text(params: dict[str, Any], key: str, *, required: bool = False, limit: int = 2000) -> str:
    value = params.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise BadRequest(f"{key}: expected {'a non-empty ' if required else ''}text")
    return value.strip()


def refs(params: dict[str, Any]) -> list[str]:
    value = params.get("refs", [])
    if not isinstance(value, list) or len(value) > MAX_REFS:
        raise BadRequest(f"refs: expected a list of at most {MAX_REFS} recording ids")
    if not all(isinstance(r, str) and 0 < len(r) <= 64 for r in value):
        raise BadRequest("refs: each must be a recording id or SHA-256 prefix")
    return [r.strip() for r in value]


def resolver(ids: list[str]) -> Callable[[sqlite3.Connection], list[str]]:
    def resolve(conn: sqlite3.Connection) -> list[str]:
        return list(dict.fromkeys(rec.resolve(conn, r) for r in ids))

    return resolve
