"""The daemon's gate: a Unix socket (`api.socket`, mode 0660, group `api.group`).

Every connection is one request. The caller is who the kernel says it is (SO_PEERCRED uid ->
login -> operator in the register, agent.access.gate); nothing the client sends names it.
Each connection runs in its own thread, so a slow export or an interview start that waits
for the camera does not hold up others; at most MAX_CLIENTS run at once.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from agent.access import wire
from agent.access.gate import Caller, Refused, Register
from agent.core.errors import AgentError
from agent.daemon import api_console, api_console_approvals, api_console_firstpin, api_verbs
from agent.station.context import Context

logger = logging.getLogger(__name__)

MAX_CLIENTS = 16
CLIENT_TIMEOUT_S = 600.0


def peer(sock: socket.socket) -> Caller:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    try:
        login: str = pwd.getpwuid(uid).pw_name
    except KeyError:
        login = f"#{uid}"  # no passwd entry: matches no register row
    return Caller(via="cli", uid=uid, login=login)


class ApiServer:
    def __init__(
        self,
        ctx: Context,
        stop: threading.Event,
        progress: api_console.CopyProgress | None = None,
    ) -> None:
        self.ctx, self.stop = ctx, stop
        self.path: Path = ctx.cfg.api.socket
        self.register = Register(ctx.cfg.operators.file, ctx.ledger)
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._sock: socket.socket | None = None
        self.tickets = api_console.Tickets(ctx.cfg.console.session_timeout_seconds)
        self.console_verbs = api_console.verbs(self.tickets, progress or api_console.CopyProgress())
        self.console_verbs.update(api_console_approvals.VERBS)
        self.console_verbs.update(api_console_firstpin.verbs(self.tickets))

    def bind(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o755)  # operators must reach the socket; the socket gates
        if self.path.exists() or self.path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # left by a daemon that died
            else:
                raise AgentError(
                    f"{self.path}: another evidence-agent daemon serves this socket "
                    "(api.socket); stop it first"
                )
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o660)
        gid = self._chgrp()
        if gid is not None:
            self._private_data_dir(gid)
        sock.listen(MAX_CLIENTS)
        sock.settimeout(0.5)
        self._sock = sock
        self.register.refresh()

    def _private_data_dir(self, gid: int) -> None:
        """Operators are in the socket's group; if that is the data dir's group too, the data
        dir loses its group bits, so an operator can never read the ledger or the key."""
        data_dir = self.ctx.cfg.station.data_dir
        st = data_dir.stat()
        if st.st_gid == gid and st.st_mode & 0o070 and st.st_uid == os.geteuid():
            os.chmod(data_dir, st.st_mode & 0o7707)
            logger.warning(
                "%s: group access removed: its group %s is also the gate's (api.group), whose "
                "members are operators",
                data_dir,
                self.ctx.cfg.api.group,
            )

    def _chgrp(self) -> int | None:
        group = self.ctx.cfg.api.group
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            logger.warning(
                "group %r (api.group) does not exist: only %s's owner can use the gate at %s",
                group,
                self.path,
                self.path,
            )
            return None
        try:
            os.chown(self.path, -1, gid)
        except OSError as exc:
            logger.warning("cannot give %s to group %s: %s", self.path, group, exc)
        return gid

    def serve(self) -> None:
        """The accept loop (thread `api`); returns when the stop event is set."""
        assert self._sock is not None
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                if not self._slots.acquire(blocking=False):
                    self._reply(conn, {"ok": False, "exit": 75, "error": "gate busy; retry"})
                    conn.close()
                    continue
                threading.Thread(target=self._client, args=(conn,), name="api-client").start()
        finally:
            self.close()

    def start(self) -> threading.Thread:
        self.bind()
        t = threading.Thread(target=self.serve, name="api", daemon=True)
        t.start()
        logger.info("gate listening on %s", self.path)
        return t

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                self.path.unlink()
            except OSError:
                pass

    @staticmethod
    def _reply(conn: socket.socket, doc: dict[str, Any]) -> None:
        try:
            wire.send(conn, doc)
        except OSError:
            pass  # the client went away; what it asked for is in custody either way

    def _client(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(CLIENT_TIMEOUT_S)
            caller = peer(conn)
            doc, fds = wire.recv(conn)
            for fd in fds:
                os.close(fd)  # a client has no business sending descriptors
            self._reply(conn, self.handle(caller, doc, conn))
        except wire.Closed:
            pass  # a probe: is the gate there?
        except (wire.WireError, OSError) as exc:
            logger.warning("gate: bad request: %s", exc)
        finally:
            conn.close()
            self.ctx.ledger.close()
            self._slots.release()

    def handle(self, caller: Caller, doc: dict[str, Any], conn: socket.socket) -> dict[str, Any]:
        verb = doc.get("verb")
        params = doc.get("params")
        handler = api_verbs.VERBS.get(verb) if isinstance(verb, str) else None
        if handler is None and isinstance(verb, str):
            handler = self.console_verbs.get(verb)
        if handler is None or not isinstance(params, dict):
            return {"ok": False, "exit": 64, "error": f"unknown request {verb!r}"}
        typed = params.get("operator")
        caller.typed = typed if isinstance(typed, str) else None
        try:
            if "session" in doc:  # the dock console, for the officer behind its ticket
                caller = api_console.console_caller(self, self.tickets, caller, doc["session"])
            result = handler(self, caller, params, conn)
        except Refused as exc:
            logger.warning("gate: %s refused %s: %s", caller.describe(), verb, exc)
            return {"ok": False, "exit": exc.exit_code, "error": str(exc)}
        except AgentError as exc:
            return {"ok": False, "exit": exc.exit_code, "error": str(exc)}
        except Exception:  # noqa: BLE001 - one bad request never takes the gate down
            logger.exception("gate: %s failed", verb)
            return {
                "ok": False,
                "exit": 70,
                "error": f"{verb} failed inside the daemon; see its log",
            }
        return {"ok": True, "exit": 0, "result": result}
