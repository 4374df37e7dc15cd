"""What `demo --mqtt` runs next to the demo's agent: a local Mosquitto with a TCP and a
WebSocket listener, and a static HTTP server for `dashboard/`, all bound to 127.0.0.1.

Both are throw-away: the broker's config, log and nothing else live in a temp dir of the
demo's work dir; nothing is persisted and nothing listens beyond the loopback interface.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from agent.core.errors import AgentError

# Debian installs the broker in /usr/sbin, which is not on an ordinary user's PATH.
MOSQUITTO_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin")


class DemoServiceError(AgentError):
    """A local service of `demo --mqtt` (broker, dashboard files) is missing or did not start."""

    exit_code = 69  # EX_UNAVAILABLE


def dashboard_dir() -> Path:
    """`dashboard/` next to the `agent` package: the checkout's, or the installed package
    data (the wheel installs `dashboard/` beside `agent/` in site-packages)."""
    here = Path(__file__).resolve().parents[2] / "dashboard"
    if (here / "index.html").is_file() and (here / "vendor" / "mqtt.min.js").is_file():
        return here
    raise DemoServiceError(
        f"the dashboard files are missing: no {here}/index.html with vendor/mqtt.min.js; "
        "reinstall evidence-agent (the wheel ships dashboard/ as package data) or run from a "
        "checkout"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def find_mosquitto() -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *MOSQUITTO_DIRS])
    exe = shutil.which("mosquitto", path=path)
    if exe is None:
        raise DemoServiceError(
            "demo --mqtt needs the Mosquitto broker: install it (Debian: apt-get install "
            "mosquitto) or run the demo without --mqtt"
        )
    return exe


class LocalBroker:
    """Mosquitto on 127.0.0.1: MQTT on `port` for the agent, WebSockets on `ws_port` for the
    dashboard; anonymous, no persistence (a demo, never a station's broker)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.ws_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "protocol mqtt",
            f"listener {self.ws_port} 127.0.0.1",
            "protocol websockets",
            "allow_anonymous true",
            "persistence false",
            f"log_dest file {self.dir / 'mosquitto.log'}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, which cannot write here
        return "\n".join(lines) + "\n"

    def start(self) -> LocalBroker:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config(), encoding="utf-8")
        self.proc = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not (_wait_port(self.port, 10) and _wait_port(self.ws_port, 5)):
            self.stop()
            log = self.dir / "mosquitto.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DemoServiceError(
                f"the demo's Mosquitto ({conf}) did not open 127.0.0.1:{self.port} and "
                f":{self.ws_port} (websockets) within 10 s; its log {log}:\n{tail}"
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files only; no access log on the demo's live view."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


class DashboardServer:
    """`dashboard/` over HTTP on 127.0.0.1 (stdlib server: a demo, not a production web
    server; docs/dashboard.md shows how to serve it on a station)."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="demo-dashboard", daemon=True
        )

    def start(self) -> DashboardServer:
        self.thread.start()
        return self

    def url(self, ws_url: str, prefix: str = "evidence") -> str:
        query = urlencode({"broker": ws_url, "prefix": prefix})
        return f"http://127.0.0.1:{self.port}/index.html?{query}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
