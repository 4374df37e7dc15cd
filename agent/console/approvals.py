"""The console's approvals page: supervised retrieval (调阅) requests.

A supervisor sees the requests waiting for a decision (requester, recordings, reason,
confidentiality) and approves or refuses one (a refusal needs a reason); a custodian sees the
state of their own requests. The page reads `console.approvals`; a decision is the daemon's
`export.approve` / `export.refuse` sent with the officer's ticket, so it passes the one gate
as via="console" and lands in custody like the command line's. Forms carry the CSRF token.

`c` is the agent.console.web.Console (its config, page() and form()), passed in by its routes.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from agent.console import session as sess
from agent.console.gateclient import GateError, call
from agent.console.text import words

_REQ = re.compile(r"^[0-9a-f-]{36}$")  # a request id is a UUID (agent/access/retrieval.py)
MAX_REASON = 2000


async def page(c: Any, request: Request, error: str | None = None) -> Response:
    if sess.officer(request, c.cfg) is None:
        return RedirectResponse("/login", 303)
    try:
        doc = await run_in_threadpool(call, c.cfg, "console.approvals", {}, sess.ticket(request))
    except GateError as exc:
        if exc.exit_code == 77:
            return c.page(request, "approvals.html", 403, doc=None, error=str(exc), done=None)
        return c.page(request, "approvals.html", 503, doc=None, error=str(exc), done=None)
    done = request.query_params.get("done")
    done = done if done in ("approved", "refused") else None
    return c.page(request, "approvals.html", 400 if error else 200, doc=doc, error=error,
                  done=done)  # fmt: skip


async def decide(c: Any, request: Request) -> Response:
    form = await c.form(request)
    if form is None:
        return PlainTextResponse("refused: the form's CSRF token is missing or wrong", 403)
    if sess.officer(request, c.cfg) is None:
        return RedirectResponse("/login", 303)
    verb = {"approve": "export.approve", "refuse": "export.refuse"}.get(
        str(form.get("decision", ""))
    )
    req = str(form.get("request", ""))[:64]
    reason = str(form.get("reason", ""))[:MAX_REASON].strip()
    t = words(sess.lang(request, c.cfg))
    if verb is None or not _REQ.match(req):
        return await page(c, request, t["none_selected"])
    if verb == "export.refuse" and not reason:
        return await page(c, request, t["refuse_needs_reason"])
    params = {"request": req, "reason": reason}
    try:
        row = await run_in_threadpool(call, c.cfg, verb, params, sess.ticket(request))
    except GateError as exc:
        return await page(c, request, str(exc))
    return RedirectResponse(f"/approvals?done={row['state']}", 303)
