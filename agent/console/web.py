"""The console's pages (Starlette + Jinja2 templates): bays with live updates (server-sent
events), officer login by PIN, my recordings with tagging, the station health strip.

Everything it shows or changes goes through the daemon's gate (agent.console.gateclient);
form input is checked here once for shape and size, then validated by the daemon like `tag`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from agent.config.loader import AgentConfig
from agent.console import approvals, firstpin
from agent.console import session as sess
from agent.console.gateclient import GateError, call
from agent.console.text import words

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
TAG_FIELDS = ("case_number", "capture_place", "proves", "importance")
MAX_FIELD = 2000
MAX_SELECTED = 200
MAX_THUMBS = 500


class Console:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        # One poll of the daemon serves every open page (a kiosk plus an admin's browser).
        self._lock = asyncio.Lock()
        self._snap: tuple[float, dict[str, Any]] | None = None
        # (officer's ticket, recording id) -> JPEG: the ticket keeps one officer's from another.
        self._thumbs: dict[tuple[str, str], bytes] = {}

    # --- helpers -----------------------------------------------------------------------------

    def page(self, request: Request, name: str, status: int = 200, **ctx: Any) -> Response:
        lang = sess.lang(request, self.cfg)
        base = {
            "t": words(lang),
            "lang": lang,
            "csrf": sess.csrf(request),
            "officer": sess.officer(request, self.cfg),
            "timeout_s": self.cfg.console.session_timeout_seconds,
        }
        return self.templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)

    def snapshot(self) -> dict[str, Any]:
        try:
            return dict(call(self.cfg, "console.bays", {}))
        except GateError as exc:
            logger.warning("console: %s", exc)
            return {"error": "gate_down", "bays": [], "health": None}

    async def shared_snapshot(self) -> dict[str, Any]:
        async with self._lock:
            fresh = self.cfg.console.poll_seconds / 2
            if self._snap is None or time.monotonic() - self._snap[0] >= fresh:
                self._snap = (time.monotonic(), await run_in_threadpool(self.snapshot))
            return self._snap[1]

    async def form(self, request: Request) -> Any:
        form = await request.form(max_files=0, max_fields=MAX_SELECTED + 20)
        if not sess.csrf_ok(request, form):
            return None
        return form

    # --- pages -------------------------------------------------------------------------------

    async def bays(self, request: Request) -> Response:
        snap = await run_in_threadpool(self.snapshot)
        return self.page(request, "bays.html", snapshot=snap)

    async def events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            last, quiet = "", 0
            while not await request.is_disconnected():
                snap = await self.shared_snapshot()
                health = dict(snap.get("health") or {})
                health.pop("at", None)  # the clock alone is no change, nor is a spool
                health["spool_free_bytes"] = health.get("spool_free_bytes", 0) >> 26  # 64 MiB
                key = json.dumps([snap.get("bays"), health, snap.get("error")], sort_keys=True)
                if key != last:
                    last, quiet = key, 0
                    yield f"data: {json.dumps(snap, ensure_ascii=False)}\n\n"
                else:
                    quiet += 1
                    if quiet * self.cfg.console.poll_seconds >= 15:
                        quiet = 0
                        yield ": keep-alive\n\n"
                await asyncio.sleep(self.cfg.console.poll_seconds)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def login_page(self, request: Request) -> Response:
        return self.page(request, "login.html", error=None)

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
        officer_id = str(form.get("officer_id", ""))[:64].strip()
        pin = str(form.get("pin", ""))[:64]
        t = words(sess.lang(request, self.cfg))
        try:
            result = await run_in_threadpool(
                call, self.cfg, "console.login", {"officer_id": officer_id, "pin": pin}
            )
        except GateError as exc:
            return self.page(request, "login.html", 400, error=str(exc))
        if not result.get("granted"):
            wait = float(result.get("retry_after_s") or 0)
            error = t["wrong_pin"] + ("; " + t["wait"].format(s=round(wait)) if wait else "")
            return self.page(request, "login.html", 401, error=error)
        sess.log_in(request, result)
        return RedirectResponse("/mine", 303)

    async def logout(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
        ticket = sess.ticket(request)
        sess.log_out(request)
        if ticket:
            try:
                await run_in_threadpool(call, self.cfg, "console.logout", {"session": ticket})
            except GateError:
                pass  # the ticket expires in the daemon by itself
        return RedirectResponse("/", 303)

    async def mine(self, request: Request) -> Response:
        if sess.officer(request, self.cfg) is None:
            return RedirectResponse("/login", 303)
        try:
            items = await run_in_threadpool(
                call, self.cfg, "console.recordings", {"limit": 100}, sess.ticket(request)
            )
        except GateError as exc:
            if exc.exit_code == 77:
                sess.log_out(request)
                return RedirectResponse("/login", 303)
            return self.page(request, "mine.html", 503, items=[], error=str(exc), done=None)
        done = request.query_params.get("done")
        return self.page(request, "mine.html", items=items, error=None, done=done)

    async def tag(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
        if sess.officer(request, self.cfg) is None:
            return RedirectResponse("/login", 303)
        refs = [str(r)[:64] for r in form.getlist("id")][:MAX_SELECTED]
        fields = {
            k: str(form.get(k, ""))[:MAX_FIELD].strip()
            for k in TAG_FIELDS
            if str(form.get(k, "")).strip()
        }
        t = words(sess.lang(request, self.cfg))
        if not refs:
            return await self._mine_error(request, t["none_selected"])
        params: dict[str, Any] = {"refs": refs, "fields": fields}
        reason = str(form.get("reason", ""))[:MAX_FIELD].strip()
        if reason:
            params["reason"] = reason
        try:
            done = await run_in_threadpool(call, self.cfg, "tag", params, sess.ticket(request))
        except GateError as exc:
            return await self._mine_error(request, str(exc))
        return RedirectResponse(f"/mine?done={len(done)}", 303)

    async def _mine_error(self, request: Request, error: str) -> Response:
        try:
            items = await run_in_threadpool(
                call, self.cfg, "console.recordings", {"limit": 100}, sess.ticket(request)
            )
        except GateError:
            sess.log_out(request)
            return RedirectResponse("/login", 303)
        return self.page(request, "mine.html", 400, items=items, error=error, done=None)

    async def held(self, request: Request, error: str | None = None) -> Response:
        """Quarantined recordings for a custodian to accept or reject (the gate decides)."""
        who = sess.officer(request, self.cfg)
        if who is None:
            return RedirectResponse("/login", 303)
        try:
            items = await run_in_threadpool(
                call, self.cfg, "console.held", {}, sess.ticket(request)
            )
        except GateError as exc:
            return self.page(request, "held.html", 403, items=[], error=str(exc), done=None)
        done = request.query_params.get("done")
        status = 400 if error else 200
        return self.page(request, "held.html", status, items=items, error=error, done=done)

    async def decide(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
        if sess.officer(request, self.cfg) is None:
            return RedirectResponse("/login", 303)
        verb = str(form.get("decision", ""))
        refs = [str(r)[:64] for r in form.getlist("id")][:MAX_SELECTED]
        reason = str(form.get("reason", ""))[:MAX_FIELD].strip()
        t = words(sess.lang(request, self.cfg))
        if verb not in ("accept", "reject") or not refs:
            return await self.held(request, t["none_selected"])
        params = {"refs": refs, "reason": reason}
        try:
            done = await run_in_threadpool(call, self.cfg, verb, params, sess.ticket(request))
        except GateError as exc:
            return await self.held(request, str(exc))
        failed = [r["message"] for r in done if not r["ok"]]
        if failed:
            return await self.held(request, "; ".join(failed))
        return RedirectResponse(f"/held?done={len(done)}", 303)

    async def thumbnail(self, request: Request) -> Response:
        """An own recording's first frame (JPEG), cached in this process by recording id."""
        if sess.officer(request, self.cfg, touch=False) is None:
            return PlainTextResponse("log in first", 403)
        rid = request.path_params["rid"][:64]
        key = (sess.ticket(request) or "", rid)
        if key not in self._thumbs:
            try:
                b64 = await run_in_threadpool(
                    call, self.cfg, "console.thumbnail", {"id": rid}, sess.ticket(request)
                )
            except GateError as exc:
                return PlainTextResponse(str(exc), 403 if exc.exit_code == 77 else 503)
            if len(self._thumbs) >= MAX_THUMBS:
                self._thumbs.pop(next(iter(self._thumbs)))
            self._thumbs[key] = base64.b64decode(b64) if b64 else b""
        data = self._thumbs[key]
        if not data:
            return Response(status_code=204)
        headers = {"Cache-Control": "private, max-age=3600"}
        return Response(data, media_type="image/jpeg", headers=headers)

    async def set_lang(self, request: Request) -> Response:
        want = request.path_params["lang"]
        if want in ("zh", "en"):
            request.session["lang"] = want
        back = request.query_params.get("next", "/")
        return RedirectResponse(
            back if back in ("/", "/mine", "/login", "/held", "/approvals", "/first-pin") else "/",
            303,
        )


def build_app(cfg: AgentConfig) -> Starlette:
    c = Console(cfg)
    routes = [
        Route("/", c.bays),
        Route("/events", c.events),
        Route("/login", c.login_page, methods=["GET"]),
        Route("/login", c.login, methods=["POST"]),
        Route("/logout", c.logout, methods=["POST"]),
        Route("/mine", c.mine),
        Route("/tag", c.tag, methods=["POST"]),
        Route("/held", c.held, methods=["GET"]),
        Route("/decide", c.decide, methods=["POST"]),
        Route("/approvals", partial(approvals.page, c), methods=["GET"]),
        Route("/approve", partial(approvals.decide, c), methods=["POST"]),
        Route("/first-pin", partial(firstpin.page, c), methods=["GET"]),
        Route("/first-pin", partial(firstpin.submit, c), methods=["POST"]),
        Route("/lang/{lang}", c.set_lang),
        Route("/thumb/{rid}", c.thumbnail),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secrets.token_hex(32),
            session_cookie="evidence_console",
            max_age=None,
            same_site="strict",
            https_only=cfg.console.tls_cert_file is not None,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
