"""The room simulators behave like the hardware: OpenCV and ffprobe read them, and they
freeze, stall, drop out and come back on command."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from agent.config.loader import InterviewConfig
from fixtures.station import Station
from simulators.camera import CameraSim
from simulators.microphone import MicrophoneSim, wav_header
from simulators.room import RoomSim
from toolcheck import require_tool


@pytest.fixture
def camera() -> Iterator[CameraSim]:
    cam = CameraSim("camT", 160, 120, 10).start()
    yield cam
    cam.close()


def _frames(url: str, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(
        url,
        cv2.CAP_FFMPEG,
        [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 3000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 3000],
    )
    try:
        assert cap.isOpened(), f"OpenCV cannot open {url}"
        out = []
        for _ in range(n):
            ok, frame = cap.read()
            assert ok
            out.append(frame)
        return out
    finally:
        cap.release()


def test_camera_serves_moving_mjpeg(camera: CameraSim) -> None:
    frames = _frames(camera.url, 4)
    assert frames[0].shape == (120, 160, 3)
    assert float(cv2.absdiff(frames[0], frames[-1]).mean()) > 0.5  # the picture moves


def test_camera_freeze_repeats_the_same_picture_and_black_is_black(camera: CameraSim) -> None:
    camera.set_state("frozen")
    a, b = _frames(camera.url, 6)[-2:]
    assert float(cv2.absdiff(a, b).mean()) == 0.0
    camera.set_state("black")
    assert float(_frames(camera.url, 3)[-1].mean()) < 5
    camera.set_state("return")
    assert float(_frames(camera.url, 1)[0].mean()) > 40


def test_camera_drop_refuses_connections_and_returns_on_the_same_port(camera: CameraSim) -> None:
    port = camera.port
    camera.set_state("dropped")
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass
    camera.set_state("return")
    assert camera.port == port
    assert _frames(camera.url, 1)[0].shape == (120, 160, 3)


def test_camera_stall_keeps_the_connection_silent(camera: CameraSim) -> None:
    with socket.create_connection(("127.0.0.1", camera.port), 2) as s:
        s.sendall(b"GET /video.mjpg HTTP/1.0\r\n\r\n")
        s.settimeout(2)
        assert s.recv(4096)
        camera.set_state("stalled")
        time.sleep(0.3)
        s.settimeout(0.2)
        try:
            while s.recv(65536):  # drain what was in flight
                pass
        except TimeoutError:
            pass
        s.settimeout(1.0)
        with pytest.raises(TimeoutError):
            s.recv(1)


def test_microphone_stream_is_a_tone_ffprobe_reads() -> None:
    ffprobe = require_tool("ffprobe")
    mic = MicrophoneSim("micT", 16000).start()
    try:
        t0 = time.monotonic()
        out = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                "-probesize",
                "4096",
                "-analyzeduration",
                "0",
                "-show_entries",
                "stream=codec_name,sample_rate,channels",
                "-of",
                "json",
                mic.url,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        assert time.monotonic() - t0 < 1.5  # no 64 KiB S/PDIF probe wait
        stream = json.loads(out)["streams"][0]
        assert stream == {"codec_name": "pcm_f32le", "sample_rate": "16000", "channels": 1}
        head = len(wav_header(16000))
        with urllib.request.urlopen(mic.url, timeout=3) as resp:
            assert resp.read(head) == wav_header(16000)
            samples = np.frombuffer(resp.read(16000 * 4 // 5), "<f4")  # 0.2 s
        assert 0.15 < float(np.sqrt(np.mean(samples**2))) < 0.2  # a -12 dBFS sine
        mic.set_state("frozen")
        with urllib.request.urlopen(mic.url, timeout=3) as resp:
            resp.read(head + 16000)
            assert not np.any(np.frombuffer(resp.read(3200), "<f4"))  # silence
    finally:
        mic.close()


def test_room_control_endpoint_and_config_snippet() -> None:
    room = RoomSim(cameras=2, width=160, height=120, fps=5).start(control_port=0)
    try:
        req = urllib.request.Request(f"{room.control_url}/cam2/frozen", method="POST")
        with urllib.request.urlopen(req, timeout=3) as resp:
            assert json.loads(resp.read()) == {"ok": "cam2 frozen"}
        with urllib.request.urlopen(f"{room.control_url}/status", timeout=3) as resp:
            status = json.loads(resp.read())
        assert status["cameras"]["cam2"]["state"] == "frozen"
        assert status["panel"]["port"].startswith("/dev/pts/")
        snippet = room.config_snippet()
        assert 'id = "cam2"' in snippet and room.mic.url in snippet
        req = urllib.request.Request(f"{room.control_url}/cam9/frozen", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=3)
        assert err.value.code == 404
    finally:
        room.close()


def test_simulate_interview_room_cli_writes_a_valid_config(station: Station) -> None:
    out = station.dir / "room.toml"
    proc = station.cli(
        "simulate",
        "interview-room",
        "--cameras",
        "2",
        "--seconds",
        "1",
        "--config-out",
        str(out),
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    doc = tomllib.loads(out.read_text(encoding="utf-8"))
    cfg = InterviewConfig.model_validate(doc["interview"])
    assert [c.id for c in cfg.cameras] == ["cam1", "cam2"]
    assert cfg.panel is not None and cfg.panel.port.startswith("/dev/pts/")
    assert "control: POST http://127.0.0.1:" in proc.stdout
