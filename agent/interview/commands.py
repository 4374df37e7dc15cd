"""Session commands for every front end: the CLI, MQTT (`interview_start`/`interview_stop`
commands call start/stop with the message's JSON) and the control panel.

Each returns a JSON-able dict (`ok`, and `error` when not ok) and never raises for a request
that cannot be honoured. A request is written to the ledger, where the daemon's interview
service picks it up; waiting (optional) follows the session's state in the ledger, so the same
code works inside the daemon and from a separate CLI process.

params (all optional): case_number (or case), interviewers (list or comma-separated),
subject, proves, notes, session (stop/mark; default: the active one), note (mark),
source (cli, mqtt, panel), operator (who asked; recorded in custody).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from agent.core.errors import AgentError
from agent.interview import sessions as ses
from agent.station.context import Context

logger = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 10.0
_wakers: list[threading.Event] = []
_wakers_lock = threading.Lock()


def register_wake(event: threading.Event) -> None:
    """The in-process service wants to hear about requests at once."""
    with _wakers_lock:
        _wakers.append(event)


def unregister_wake(event: threading.Event) -> None:
    with _wakers_lock:
        if event in _wakers:
            _wakers.remove(event)


def _notify() -> None:
    with _wakers_lock:
        for e in _wakers:
            e.set()


def service_status(ctx: Context) -> dict[str, Any] | None:
    """The service's heartbeat/state file if the daemon that wrote it is alive and fresh."""
    path = ctx.cfg.interview_dir / "state.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    pid = doc.get("pid")
    if not isinstance(pid, int) or age > HEARTBEAT_STALE_S:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user
    return dict(doc)


def _require_service(ctx: Context) -> None:
    if ctx.cfg.station.role != "interview":
        raise ses.SessionError(
            f'station.role is "{ctx.cfg.station.role}": interview sessions need '
            'station.role = "interview" (and [[interview.cameras]]) in the config'
        )
    if not ctx.cfg.interview.cameras:
        raise ses.SessionError("no cameras configured: add [[interview.cameras]] to the config")
    if service_status(ctx) is None:
        raise ses.SessionError(
            "the interview service is not running: start the daemon (`evidence-agent run` or "
            "`systemctl start evidence-agent`) with this config"
        )


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ses.SessionError("interviewers must be a list of officer ids or a comma-separated text")


def _text(params: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = params.get(key)
        if value is not None:
            if not isinstance(value, str | int):
                raise ses.SessionError(f"{key} must be text")
            text = str(value).strip()
            if len(text) > 500:
                raise ses.SessionError(f"{key} is longer than 500 characters")
            return text or None
    return None


def _metadata(params: dict[str, Any]) -> ses.Metadata:
    return ses.Metadata(
        case_number=_text(params, "case_number", "case"),
        interviewers=_list(params.get("interviewers", params.get("interviewer"))),
        subject=_text(params, "subject"),
        proves=_text(params, "proves"),
        notes=_text(params, "notes"),
    )


def _check_metadata(ctx: Context, meta: ses.Metadata) -> None:
    """The session's metadata becomes its recordings' metadata: the same rules apply (case
    number format, collector in the roster), checked before anything records."""
    from agent.interview.segments import session_fields
    from agent.tagging import apply as tagging

    fields = session_fields(ctx.cfg.interview.room or ctx.station_id, meta)
    try:
        tagging.validator(ctx).validate(fields)
    except AgentError as exc:
        raise ses.SessionError(f"session not started: {exc}") from None


def _who(params: dict[str, Any]) -> tuple[str, str]:
    source = _text(params, "source") or "api"
    return source, _text(params, "operator") or source


def _result(row: Any) -> dict[str, Any]:
    return {
        "ok": row["state"] not in ("failed",),
        "session": row["id"],
        "state": row["state"],
        "room": row["room"],
        "case_number": row["case_number"],
        "requested_at": row["requested_at"],
        "started_at": row["started_at"],
        "ended_at": row["ended_at"],
        "coverage": row["coverage"],
        **({"error": row["reason"]} if row["state"] == "failed" else {}),
    }


def _wait(ctx: Context, sid: str, until: tuple[str, ...], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        row = ctx.ledger.one("SELECT * FROM interview_sessions WHERE id=?", (sid,))
        if row is None or row["state"] in until or time.monotonic() > deadline:
            return row
        time.sleep(0.1)


def start(
    ctx: Context, params: dict[str, Any], wait: bool = True, timeout: float | None = None
) -> dict[str, Any]:
    """Open a session; with wait, return once it records (or failed)."""
    try:
        _require_service(ctx)
        meta = _metadata(params)
        _check_metadata(ctx, meta)
        source, actor = _who(params)
        room = ctx.cfg.interview.room or ctx.station_id
        with ctx.ledger.tx() as conn:
            sid = ses.request_start(conn, room, meta, source, actor)
        _notify()
        logger.debug("interview session %s requested by %s (%s)", sid, actor, source)
        if not wait:
            return {"ok": True, "session": sid, "state": "requested"}
        limit = timeout if timeout is not None else ctx.cfg.interview.start_timeout_seconds + 5
        row = _wait(ctx, sid, ("recording", "failed", "closed", "stopping"), limit)
        result = _result(row)
        if row["state"] == "requested":
            result.update(ok=False, error=f"not recording after {limit:g} s; still trying")
        return result
    except AgentError as exc:
        return {"ok": False, "error": str(exc)}


def stop(
    ctx: Context, params: dict[str, Any], wait: bool = True, timeout: float = 120.0
) -> dict[str, Any]:
    """Stop the given (default: the active) session; with wait, return once it is closed."""
    try:
        source, actor = _who(params)
        with ctx.ledger.tx() as conn:
            ref = _text(params, "session")
            sid = ses.resolve(conn, ref) if ref else None
            row = ses.get(conn, sid) if sid else ses.active(conn)
            if row is None or row["state"] not in ses.ACTIVE:
                what = f"session {sid} is {row['state']}" if row is not None else "no session"
                raise ses.SessionError(f"nothing to stop: {what} is recording in this room")
            sid = row["id"]
            if row["state"] != "stopping":
                ses.request_stop(conn, sid, source, actor)
        _notify()
        logger.debug("interview session %s: stop requested by %s (%s)", sid, actor, source)
        if service_status(ctx) is None:
            # Taken all the same: the daemon closes the session when it is back.
            return {
                "ok": True,
                "session": sid,
                "state": "stopping",
                "note": "the interview "
                "service is not running; the session is closed when it starts",
            }
        if not wait:
            return {"ok": True, "session": sid, "state": "stopping"}
        row = _wait(ctx, sid, ("closed", "failed"), timeout)
        result = _result(row)
        if row["state"] == "stopping":
            result.update(ok=False, error=f"still closing after {timeout:g} s")
        elif row["state"] == "failed":
            result["ok"] = row["started_at"] is None and "before recording" in (row["reason"] or "")
        return result
    except AgentError as exc:
        return {"ok": False, "error": str(exc)}


def mark(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Put a mark (bookmark) into the recording session."""
    try:
        source, actor = _who(params)
        with ctx.ledger.tx() as conn:
            row = ses.active(conn)
            if row is None or row["state"] != "recording":
                raise ses.SessionError("no session is recording: nothing to mark")
            at = ses.add_mark(conn, row["id"], source, _text(params, "note"), actor)
        return {"ok": True, "session": row["id"], "at": at}
    except AgentError as exc:
        return {"ok": False, "error": str(exc)}
