"""Minimal sd_notify(3) client: tell systemd we are ready, alive and stopping.

No dependency on libsystemd or python-systemd: the protocol is one datagram per message on the
AF_UNIX socket named by `$NOTIFY_SOCKET`. Outside systemd (tests, CLI, demo) every call is a
no-op, and a failing send never takes the daemon down: it is logged once and then ignored.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of `$WATCHDOG_USEC`), or None if not requested.

    Pinging at half the deadline is what sd_watchdog_enabled(3) recommends: one late ping
    must not get the service killed. `$WATCHDOG_PID`, when set, names the process the
    watchdog is meant for; a child that inherited the environment must not ping.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000 / 2


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        # Abstract namespace socket: "@" stands for the leading NUL byte.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    # vsock addresses (vsock:CID:PORT) are for VMs, not edge stations.
    return None


class SystemdNotifier:
    """Sends sd_notify messages; a no-op when `$NOTIFY_SOCKET` is unset or unusable."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._env = env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _address(raw) if raw else None
        if raw and self._address is None:
            logger.warning("NOTIFY_SOCKET=%s is not a unix socket address; not notifying", raw)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens for notifications."""
        return self._address is not None

    def ready(self) -> None:
        self.notify("READY=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def status(self, text: str) -> None:
        # One line only: a newline would start a new KEY=VALUE assignment.
        self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog_interval(self) -> float | None:
        return watchdog_interval(self._env)

    def notify(self, message: str) -> bool:
        """Send one raw message (e.g. "READY=1"); return whether it was sent."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            # systemd restarting or the socket gone: keep running, the watchdog (if any)
            # will act on the silence. Log once so a broken setup is visible but not noisy.
            if not self._warned:
                self._warned = True
                logger.warning("sd_notify to %s failed: %s", self._env["NOTIFY_SOCKET"], exc)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
