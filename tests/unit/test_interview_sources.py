"""Source strings: kinds, credentials kept out of logs, reachability checks on real sockets."""

from __future__ import annotations

import socket

import pytest

from agent.interview.ffproc import redact_line
from agent.rules import sources


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("/dev/video0", "v4l2", "/dev/video0"),
        ("v4l2:/dev/video2", "v4l2", "/dev/video2"),
        ("alsa:hw:1,0", "alsa", "hw:1,0"),
        ("pulse:room_mic", "pulse", "room_mic"),
        ("rtsp://cam.local/stream1", "rtsp", "rtsp://cam.local/stream1"),
        ("http://127.0.0.1:8080/video.mjpg", "http", "http://127.0.0.1:8080/video.mjpg"),
    ],
)
def test_parse_kinds(text: str, kind: str, target: str) -> None:
    src = sources.parse(text)
    assert (src.kind, src.target) == (kind, target)


def test_parse_rejects_what_it_cannot_open_and_hides_the_password() -> None:
    with pytest.raises(ValueError) as err:
        sources.parse("ftp://admin:secret@cam/x")
    assert "secret" not in str(err.value)


def test_redact_removes_credentials() -> None:
    assert sources.redact("rtsp://admin:12345@10.0.0.5:554/s1") == "rtsp://***@10.0.0.5:554/s1"
    assert sources.redact("http://cam/video") == "http://cam/video"
    line = "rtsp://admin:12345@10.0.0.5:554/s1: Connection refused"
    assert "12345" not in redact_line(line) and "Connection refused" in redact_line(line)


def test_check_network_source_listening_and_refused() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert sources.check(sources.parse(f"http://127.0.0.1:{port}/v")) is None
    problem = sources.check(sources.parse(f"http://127.0.0.1:{port}/v"), timeout=0.5)
    assert problem is not None and problem.startswith("unplugged") and str(port) in problem


def test_check_missing_device_and_sound_card() -> None:
    assert "does not exist" in (sources.check(sources.parse("/dev/video-nonexistent-9")) or "")
    assert "not present" in (sources.check(sources.parse("alsa:hw:97,0")) or "")
    assert sources.check(sources.parse("alsa:default")) is None  # alsa-lib resolves names
