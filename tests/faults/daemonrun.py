"""Run `evidence-agent run` until it is ready (recovery has run), then stop it with SIGTERM."""

from __future__ import annotations

import signal
import socket

from fixtures.station import Station


def run_until_ready(st: Station) -> int:
    """Start the daemon, wait for systemd READY=1, SIGTERM it; returns its exit code."""
    sock_path = st.dir / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    proc = st.popen("run", env={"NOTIFY_SOCKET": str(sock_path)})
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"run never got ready: {proc.communicate()[1]}") from None
    finally:
        sock.close()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    proc.communicate()
    return rc
