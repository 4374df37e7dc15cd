"""Console sessions: a signed cookie (Starlette's SessionMiddleware) holding a CSRF token,
the language and, once an officer logged in, the daemon's ticket; idle officers are logged out.

Every form carries the session's CSRF token; a POST without the right one is refused (403)
before anything is sent to the daemon. The signing key is made at start-up and never leaves
the process, so a console restart logs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from starlette.requests import Request

from agent.config.loader import AgentConfig


def csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, form: Any) -> bool:
    want = request.session.get("csrf")
    got = form.get("csrf") if form is not None else None
    return (
        isinstance(want, str)
        and isinstance(got, str)
        and hmac.compare_digest(want.encode(), got.encode())
    )


def lang(request: Request, cfg: AgentConfig) -> str:
    value = request.session.get("lang")
    return value if value in ("zh", "en") else cfg.console.lang


def officer(request: Request, cfg: AgentConfig, touch: bool = True) -> dict[str, Any] | None:
    """The logged-in officer, or None; idle longer than the timeout logs out."""
    who = request.session.get("officer")
    if not isinstance(who, dict):
        return None
    now = time.time()
    if now - float(request.session.get("seen", 0)) > cfg.console.session_timeout_seconds:
        log_out(request)
        return None
    if touch:
        request.session["seen"] = now
    return who


def log_in(request: Request, result: dict[str, Any]) -> None:
    request.session["officer"] = {
        "officer_id": result["officer_id"],
        "name": result["name"],
        "roles": result["roles"],
    }
    request.session["ticket"] = result["session"]
    request.session["seen"] = time.time()
    request.session["csrf"] = secrets.token_urlsafe(32)  # a new token per login


def log_out(request: Request) -> None:
    for key in ("officer", "ticket", "seen"):
        request.session.pop(key, None)


def ticket(request: Request) -> str | None:
    value = request.session.get("ticket")
    return value if isinstance(value, str) else None
