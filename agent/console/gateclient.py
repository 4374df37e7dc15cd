"""The console's requests to the daemon's gate (api.socket): one request per connection.

The console holds no device, volume or ledger access: bays, health and an officer's
recordings are read, and tags made, by the daemon, which knows the console by its peer uid
(`console.login`) and the officer by the ticket it issued at PIN login.
"""

from __future__ import annotations

import socket
from typing import Any

from agent.access import wire
from agent.config.loader import AgentConfig
from agent.core.errors import AgentError

TIMEOUT_S = 30.0


class GateError(AgentError):
    """The daemon refused or failed a console request; `exit_code` as it said (77: refused)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def call(cfg: AgentConfig, verb: str, params: dict[str, Any], session: str | None = None) -> Any:
    path = cfg.api.socket
    doc: dict[str, Any] = {"verb": verb, "params": params}
    if session is not None:
        doc["session"] = session
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise GateError(
                f"cannot reach the daemon's gate at {path} (api.socket): {exc.strerror}; is "
                "`evidence-agent run` running, and is the console's login in api.group?",
                69,
            ) from None
        wire.send(sock, doc)
        answer, fds = wire.recv(sock)
    finally:
        sock.close()
    if fds:  # the console never takes descriptors
        import os

        for fd in fds:
            os.close(fd)
    if not answer.get("ok"):
        raise GateError(str(answer.get("error")), int(answer.get("exit", 1)))
    return answer.get("result")
