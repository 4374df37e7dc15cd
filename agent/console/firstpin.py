"""The console's first-use page (`/first-pin`): an officer with a one-time code from an admin
(`operators set-pin OFFICER --one-time`) sets their own PIN, typed twice, and is logged in.

The daemon checks the code (agent/access/pincodes.py): a wrong one backs off like a wrong PIN.
The form carries the CSRF token; nothing is sent to the daemon without it.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from agent.console import session as sess
from agent.console.gateclient import GateError, call
from agent.console.text import words


async def page(c: Any, request: Request) -> Response:
    return c.page(request, "first_pin.html", error=None)  # type: ignore[no-any-return]


async def submit(c: Any, request: Request) -> Response:
    form = await c.form(request)
    if form is None:
        return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
    t = words(sess.lang(request, c.cfg))
    officer_id = str(form.get("officer_id", ""))[:64].strip()
    code = str(form.get("code", ""))[:64].strip()
    pin = str(form.get("pin", ""))[:64]
    if pin != str(form.get("pin2", ""))[:64]:
        return c.page(request, "first_pin.html", 400, error=t["pins_differ"])  # type: ignore[no-any-return]
    params = {"officer_id": officer_id, "code": code, "pin": pin}
    try:
        result = await run_in_threadpool(call, c.cfg, "console.first_pin", params)
    except GateError as exc:
        return c.page(request, "first_pin.html", 400, error=str(exc))  # type: ignore[no-any-return]
    if not result.get("granted"):
        wait = float(result.get("retry_after_s") or 0)
        error = t["wrong_code"] + ("; " + t["wait"].format(s=round(wait)) if wait else "")
        return c.page(request, "first_pin.html", 401, error=error)  # type: ignore[no-any-return]
    sess.log_in(request, result)
    return RedirectResponse("/mine", 303)
