"""Camera and microphone sources: what kind a config string names, how ffmpeg opens it, and a
quick check whether it is there at all.

The check runs before every (re)connect so a gap can say *why* there is no picture (the camera
is unplugged, refuses connections) instead of only that ffmpeg failed, and so reconnect attempts
do not spawn an ffmpeg process per second against a camera that is gone. Source strings may
carry credentials (rtsp://user:pass@host): `redact` is used wherever one is logged or stored.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

NETWORK = ("http", "https", "rtsp", "rtsps")


@dataclass(frozen=True)
class Source:
    kind: str  # v4l2 | alsa | pulse | http | https | rtsp | rtsps
    target: str  # what ffmpeg's -i gets

    @property
    def network(self) -> bool:
        return self.kind in NETWORK


def parse(text: str) -> Source:
    """`/dev/video0`, `v4l2:/dev/video0`, `alsa:hw:1,0`, `pulse:name`, or a URL."""
    text = text.strip()
    if text.startswith("/dev/"):
        return Source("v4l2", text)
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme in ("v4l2", "alsa", "pulse") and rest:
        return Source(scheme, rest)
    if sep and scheme in NETWORK and rest.startswith("//"):
        return Source(scheme, text)
    raise ValueError(
        f"source {redact(text)!r} is not understood: use /dev/videoN, alsa:<device>, "
        "pulse:<source>, http(s)://..., or rtsp://..."
    )


def redact(text: str) -> str:
    """The source with any user:password removed (safe for logs, the ledger and MQTT)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"//[^@/]*@", "//***@", text)
    if parts.username is None and parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def check(src: Source, timeout: float = 1.0) -> str | None:
    """None if the source looks reachable, else a short reason (`unplugged: ...`)."""
    if src.kind == "v4l2":
        if not os.path.exists(src.target):
            return f"unplugged: {src.target} does not exist"
        if not os.access(src.target, os.R_OK):
            return f"unplugged: {src.target} is not readable (is the service in group video?)"
        return None
    if src.kind == "alsa":
        return _check_alsa(src.target)
    if src.network:
        parts = urlsplit(src.target)
        default = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}[src.kind]
        host, port = parts.hostname or "", parts.port or default
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return None
        except OSError as exc:
            return f"unplugged: {host}:{port} {exc.strerror or exc}"
    return None  # pulse: the server decides; ffmpeg's error says what is wrong


def _check_alsa(device: str) -> str | None:
    # hw:1,0 / plughw:CARD=Mic,DEV=0: the card must be present; default/dsnoop names are
    # resolved by alsa-lib itself, so only card-addressed devices can be checked here.
    m = re.match(r"^(?:plug)?hw:(?:CARD=)?([^,]+)", device)
    if not m:
        return None
    card = m.group(1)
    path = f"/proc/asound/card{card}" if card.isdigit() else f"/proc/asound/{card}"
    if not os.path.exists(path):
        return f"unplugged: sound card {card} is not present ({path} missing)"
    return None
