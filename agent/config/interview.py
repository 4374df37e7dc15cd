"""The `[interview]` config section: the room's cameras, microphone and segments."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from agent.config.base import Section
from drivers.panel_serial import PanelSettings


class CameraConfig(Section):
    id: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Camera id used in file names, events and reports (letters, digits, _ . -).",
    )
    name: str | None = Field(
        None, description="Name burned into the picture (default: the id); Chinese is fine."
    )
    video: str = Field(
        description="Video source: /dev/videoN (V4L2/UVC), rtsp://..., or http(s)://... "
        "(MJPEG, e.g. `simulate interview-room`)."
    )
    audio: str | None = Field(
        None,
        description="Sound for this camera's files (default: interview.microphone): "
        "alsa:<device>, pulse:<source>, http(s)://... (WAV), rtsp://..., or `camera` for the "
        "sound track of the camera's own stream.",
    )
    fps: float = Field(
        25.0,
        gt=0,
        le=120,
        description="Expected frame rate: sets the keyframe interval (and the rate the "
        "OpenCV fallback writes at).",
    )
    video_size: str | None = Field(
        None,
        pattern=r"^\d+x\d+$",
        description="WxH to request from a V4L2 camera (network cameras send their own size).",
    )
    input_format: str | None = Field(
        None, description="V4L2 input format to request, e.g. mjpeg or yuyv422."
    )

    @field_validator("video")
    @classmethod
    def _video(cls, v: str) -> str:
        from agent.rules.sources import parse

        if parse(v).kind not in ("v4l2", "http", "https", "rtsp", "rtsps"):
            raise ValueError("a camera is /dev/videoN, v4l2:/dev/videoN, http(s):// or rtsp://")
        return v

    @field_validator("audio")
    @classmethod
    def _audio(cls, v: str | None) -> str | None:
        if v is not None and v.strip().lower() != "camera":
            from agent.rules.sources import parse

            parse(v)
        return v


class InterviewConfig(Section):
    room: str | None = Field(
        None,
        description="Room name burned into the picture and recorded as the place (采集地点), "
        "e.g. 询问室1 (default: station.id).",
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list, description="The room's cameras; one ffmpeg process each."
    )
    microphone: str | None = Field(
        None,
        description="The room's microphone, recorded into every camera's files: alsa:<device>, "
        "pulse:<source>, http(s)://... (WAV) or rtsp://...",
    )
    segment_seconds: float = Field(
        300.0, ge=2, le=3600, description="Length of a segment file (cut at the next keyframe)."
    )
    gap_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Frames or sound stopped (or frozen, black, silent) this long is a gap; "
        "shorter hiccups are not.",
    )
    read_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="Open/read timeout of network sources (-rw_timeout)."
    )
    reconnect_seconds: float = Field(
        1.0, gt=0, le=60, description="Wait between attempts to reach a camera that went away."
    )
    start_timeout_seconds: float = Field(
        15.0, gt=0, le=300, description="A session whose cameras deliver nothing this long fails."
    )
    ffmpeg: str = Field(
        "ffmpeg", description="ffmpeg executable; if missing, OpenCV records video only."
    )
    ffprobe: str = Field("ffprobe", description="ffprobe executable (checks each segment).")
    font: Path | None = Field(
        None, description="Font file with CJK glyphs for the overlay (default: fc-match zh-cn)."
    )
    video_preset: str = Field(
        "veryfast", description="libx264 preset (ultrafast..veryslow): CPU against file size."
    )
    video_crf: int = Field(23, ge=0, le=51, description="libx264 quality (lower is better).")
    audio_bitrate_kbps: int = Field(96, ge=16, le=512, description="AAC bit rate.")
    monitor_fps: float = Field(
        5.0, gt=0, le=10, description="Pictures per second OpenCV checks (frozen, black)."
    )
    black_level: float = Field(
        12.0, ge=0, le=255, description="Mean brightness (0-255) below which a picture is black."
    )
    freeze_diff: float = Field(
        0.2,
        ge=0,
        le=50,
        description="Mean pixel change (0-255) below which two pictures are the same (frozen).",
    )
    silence_dbfs: float = Field(
        -90.0, ge=-120, le=0, description="Sound below this level is a dead microphone."
    )
    thumbnail_seconds: float = Field(
        10.0, gt=0, description="How often each camera's thumbnail is refreshed."
    )
    capture_dir: Path | None = Field(
        None, description="Where segments are written (default: <data_dir>/interview)."
    )
    panel: PanelSettings | None = Field(None, description="The serial control panel, if any.")

    @field_validator("cameras")
    @classmethod
    def _unique(cls, v: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dupes)}")
        return v

    @field_validator("video_preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                   "slower", "veryslow")  # fmt: skip
        if v not in presets:
            raise ValueError(f"must be one of {', '.join(presets)}")
        return v
