"""A whole simulated interview room: cameras, a microphone and the control panel, plus a
control endpoint to misbehave on command (`evidence-agent simulate interview-room`).

Commands, over HTTP (`POST http://127.0.0.1:<control>/<device>/<command>`) or typed on stdin
(`<device> <command>`): a camera or `mic` takes live | frozen | stalled | dropped | return
(cameras also `black`); `panel` takes start | stop | mark | hello. `GET /status` returns the
state of every device as JSON, including the panel's lamp and its button-to-lamp latencies.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulators.camera import CameraSim
from simulators.microphone import MicrophoneSim
from simulators.panel import PanelSim

logger = logging.getLogger(__name__)


class RoomSim:
    def __init__(
        self,
        cameras: int = 1,
        width: int = 320,
        height: int = 240,
        fps: float = 10.0,
        rate: int = 16000,
        panel: bool = True,
    ) -> None:
        self.cameras = [CameraSim(f"cam{i + 1}", width, height, fps) for i in range(cameras)]
        self.mic = MicrophoneSim("mic", rate)
        self.panel = PanelSim() if panel else None
        self._server: ThreadingHTTPServer | None = None

    def start(self, control_port: int | None = 0) -> RoomSim:
        for cam in self.cameras:
            cam.start()
        self.mic.start()
        if self.panel is not None:
            self.panel.start()
        if control_port is not None:
            self._server = ThreadingHTTPServer(("127.0.0.1", control_port), self._handler())
            threading.Thread(
                target=self._server.serve_forever, name="sim-room-control", daemon=True
            ).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for cam in self.cameras:
            cam.close()
        self.mic.close()
        if self.panel is not None:
            self.panel.close()

    @property
    def control_url(self) -> str | None:
        if self._server is None:
            return None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def device(self, name: str) -> CameraSim | MicrophoneSim:
        devices: list[CameraSim | MicrophoneSim] = [*self.cameras, self.mic]
        for dev in devices:
            if dev.name == name:
                return dev
        raise KeyError(name)

    def command(self, device: str, cmd: str) -> str:
        """Apply one command; returns a short confirmation or raises ValueError/KeyError."""
        cmd = cmd.lower()
        if device == "panel":
            if self.panel is None:
                raise KeyError("panel")
            if cmd == "hello":
                self.panel.hello()
            elif cmd in ("start", "stop", "mark"):
                self.panel.press(cmd)
            else:
                raise ValueError(f"panel: unknown command {cmd!r} (start, stop, mark, hello)")
            return f"panel {cmd}"
        dev = self.device(device)
        dev.set_state(cmd)
        return f"{device} {dev.state}"

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "cameras": {
                c.name: {
                    "url": c.url,
                    "state": c.state,
                    "black": c.black,
                    "frames": c.frames_made,
                    "skipped": c.skipped_frames,
                }
                for c in self.cameras
            },
            "mic": {"url": self.mic.url, "state": self.mic.state, "samples": self.mic.samples_sent},
        }
        if self.panel is not None:
            doc["panel"] = {
                "port": self.panel.path,
                "lamp": self.panel.lamp,
                "presses": len(self.panel.log.presses),
                "latencies_s": self.latencies(),
            }
        return doc

    def latencies(self) -> list[float]:
        """Seconds from each START/STOP press to the lamp change that followed it."""
        if self.panel is None:
            return []
        out = []
        changes = self.panel.log.lamp_changes
        for at, button in self.panel.log.presses:
            want = {"START": True, "STOP": False}.get(button)
            after = [t for t, on in changes if t >= at and on is want]
            if want is not None and after:
                out.append(round(after[0] - at, 4))
        return out

    def config_snippet(self) -> str:
        lines = ["[interview]", 'room = "询问室1"', f'microphone = "{self.mic.url}"']
        if self.panel is not None:
            lines += ["", "[interview.panel]", f'port = "{self.panel.path}"']
        for cam in self.cameras:
            lines += [
                "",
                "[[interview.cameras]]",
                f'id = "{cam.name}"',
                f'video = "{cam.url}"',
                f"fps = {cam.fps:g}",
            ]
        return "\n".join(lines) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        room = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("control: " + fmt, *args)

            def _reply(self, code: int, doc: Any) -> None:
                body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") in ("", "/status"):
                    self._reply(200, room.status())
                else:
                    self._reply(404, {"error": "GET /status"})

            def do_POST(self) -> None:  # noqa: N802
                parts = [p for p in self.path.split("/") if p]
                if len(parts) != 2:
                    self._reply(404, {"error": "POST /<device>/<command>"})
                    return
                try:
                    self._reply(200, {"ok": room.command(parts[0], parts[1])})
                except KeyError:
                    self._reply(404, {"error": f"no device {parts[0]}"})
                except ValueError as exc:
                    self._reply(400, {"error": str(exc)})

        return Handler
