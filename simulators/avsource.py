"""A switchable HTTP source on 127.0.0.1: the shared part of the camera and microphone fakes.

A real IP camera or network microphone can do four things a recorder must survive: deliver,
freeze (keep the connection but send a stuck picture or nothing at all), drop out (unplugged:
connections die and new ones are refused) and come back on the same address. This class owns
the listening socket and the client connections and implements those states; subclasses only
say what one client is sent while the source is live.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

logger = logging.getLogger(__name__)

STATES = ("live", "frozen", "stalled", "dropped")


class HttpSource:
    """One streaming endpoint. `state` is live | frozen | stalled | dropped."""

    content_type = "application/octet-stream"
    path = "/"

    def __init__(self, name: str, port: int = 0, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self._want_port = port
        self.port = 0
        self.state = "live"
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._stop = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self.connections = 0  # accepted client connections, for tests and the bench

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> HttpSource:
        self._listen()
        return self

    def close(self) -> None:
        self._stop.set()
        self._unlisten()
        self._drop_clients()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Returning after a drop must get the same port back although old connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port or self._want_port))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accept_thread = threading.Thread(
            target=self._accept_loop, args=(sock,), name=f"sim-{self.name}-accept", daemon=True
        )
        self._accept_thread.start()

    def _unlisten(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _drop_clients(self) -> None:
        with self._lock:
            clients = list(self._clients)
            self._clients.clear()
        for c in clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    # --- commands ------------------------------------------------------------------------

    def set_state(self, state: str) -> None:
        """live, frozen, stalled or dropped (`return` is live again)."""
        if state == "return":
            state = "live"
        if state not in STATES:
            raise ValueError(f"{self.name}: unknown state {state!r} (one of {', '.join(STATES)})")
        old, self.state = self.state, state
        logger.info("simulator %s: %s -> %s", self.name, old, state)
        if state == "dropped" and old != "dropped":
            self._unlisten()  # unplugged: new connections are refused
            self._drop_clients()
        elif old == "dropped" and state != "dropped":
            self._listen()

    # --- serving -------------------------------------------------------------------------

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # listener closed (dropped or stopped)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.add(conn)
                self.connections += 1
            threading.Thread(
                target=self._serve, args=(conn,), name=f"sim-{self.name}-client", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5.0)
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 16384:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            if (
                len(line) < 2
                or line[0] not in ("GET", "HEAD")
                or line[1].split("?")[0] != self.path
            ):
                conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(
                f"HTTP/1.0 200 OK\r\nContent-Type: {self.content_type}\r\n"
                "Cache-Control: no-cache\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            if line[0] == "HEAD":
                return
            conn.settimeout(10.0)
            for data in self.stream():
                if self._stop.is_set() or self.state == "dropped":
                    return
                if data:
                    conn.sendall(data)
        except OSError:
            pass  # client went away or we dropped it
        finally:
            with self._lock:
                self._clients.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    def stream(self) -> Iterator[bytes]:
        """Bytes for one client, paced in real time; subclasses implement this."""
        raise NotImplementedError

    def paced(self, interval: float) -> Iterator[int]:
        """Tick numbers at `interval` seconds; ticks missed by a slow client are skipped."""
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set() and self.state != "dropped":
            yield tick
            tick += 1
            due = start + tick * interval
            now = time.monotonic()
            if now > due + interval:  # fell behind: skip ahead instead of bursting
                missed = int((now - due) / interval)
                tick += missed
                self.skipped(missed)
                due = start + tick * interval
            time.sleep(max(0.0, due - time.monotonic()))

    def skipped(self, n: int) -> None:
        """Hook: `n` ticks were skipped because the client read too slowly."""
