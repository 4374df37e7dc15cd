"""The ffmpeg command line of one camera: inputs with timeouts, overlay, segments, monitors.

Timestamps: every input is stamped with the wall clock as it is read
(`-use_wallclock_as_timestamps`), kept as is (`-copyts`) and shifted by the moment the process
was spawned (`-output_ts_offset`, to the millisecond). So picture and sound line up by the wall
clock even when the camera and the microphone open at different moments, and a segment's times
in the segment list plus the spawn time are its wall-clock times. The segment muxer cuts at
multiples of the segment length counted from zero, i.e. from the spawn, a fraction of a second
before the first frame (without the shift it would cut at every keyframe of an epoch-stamped
stream).

Inputs: the microphone (if separate) first, then the camera. Outputs: 0 = MPEG-TS segments
(H.264 + AAC) with the overlay; 1 = small PPM pictures of the camera's own picture (before the
overlay, whose clock would hide a frozen picture) on stdout for the OpenCV watcher; 2 = 8 kHz
mono PCM of the microphone on a pipe; progress on another.
ffmpeg is stopped with SIGTERM, on which it finishes the open segment and the segment list.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.config.loader import CameraConfig, InterviewConfig
from agent.rules.sources import Source

logger = logging.getLogger(__name__)

SEGMENT_PATTERN = "seg_%06d.ts"
SEGMENT_LIST = "list.csv"
AUDIO_MONITOR_RATE = 8000
MONITOR_WIDTH = 320


@dataclass(frozen=True)
class Inputs:
    video: Source
    audio: Source | None


def escape_filter_value(value: str) -> str:
    """Escape a filter option value for a filtergraph string (both of ffmpeg's levels)."""
    level1 = value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:")
    out = []
    for ch in level1:
        if ch in "\\'[],;":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def overlay_text(room: str, camera: str, case_number: str | None) -> str:
    """drawtext text (expansion on): room, camera, case number, then the live clock."""

    def lit(s: str) -> str:
        # In drawtext's expansion `\` escapes and `%` starts a function: keep both literal.
        return " ".join(s.split()).replace("\\", "\\\\").replace("%", "\\%")

    first = "  ".join(lit(p) for p in (room, camera, case_number or "") if p)
    return first + "\n%{localtime:%Y-%m-%d %H\\:%M\\:%S}"


@lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file with Chinese glyphs, via fontconfig (fonts-noto-cjk on Debian)."""
    fc = shutil.which("fc-match")
    if fc is None:
        return None
    try:
        out = subprocess.run(
            [fc, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and Path(out).is_file() else None


def _input_args(src: Source, cam: CameraConfig | None, timeout_us: int) -> list[str]:
    args = ["-thread_queue_size", "1024", "-use_wallclock_as_timestamps", "1"]
    if src.kind in ("http", "https"):
        # Small probes: an MJPEG frame or a few ms of audio tell ffmpeg all it needs, and every
        # probing moment is a moment the other input's data piles up unread.
        probe = "32768" if cam is not None else "4096"
        args += ["-rw_timeout", str(timeout_us), "-probesize", probe, "-analyzeduration", "0"]
        # Room for ~1 s of 720p MJPEG in the socket while ffmpeg sets up its encoders, so the
        # camera need not skip frames meanwhile.
        args += ["-recv_buffer_size", str(4 << 20)]
    elif src.kind in ("rtsp", "rtsps"):
        args += ["-rtsp_transport", "tcp", "-timeout", str(timeout_us)]
    elif src.kind == "v4l2":
        args += ["-f", "v4l2"]
        if cam is not None:
            args += ["-framerate", f"{cam.fps:g}"]
            if cam.video_size:
                args += ["-video_size", cam.video_size]
            if cam.input_format:
                args += ["-input_format", cam.input_format]
    elif src.kind in ("alsa", "pulse"):
        args += ["-f", src.kind]
    return [*args, "-i", src.target]


def filter_graph(
    overlay_file: Path,
    font: Path | None,
    monitor_fps: float,
    audio_input: str | None,
    video_input: str = "0:v",
) -> str:
    """`audio_input`: "0:a" (microphone opened first), the camera's own "0:a", or None."""
    draw = [f"textfile={escape_filter_value(str(overlay_file))}"]
    if font is not None:
        draw.append(f"fontfile={escape_filter_value(str(font))}")
    draw += [
        "fontcolor=white",
        "fontsize=max(14\\,h/28)",
        "line_spacing=4",
        "box=1",
        "boxcolor=black@0.55",
        "boxborderw=6",
        "x=8",
        "y=8",
    ]
    interval = 1.0 / monitor_fps
    # select by time, not by frame count: frame rates of network cameras wander.
    pick = f"select='isnan(prev_selected_t)+gte(t-prev_selected_t\\,{interval:.3f})'"
    graph = [
        f"[{video_input}]format=yuv420p,split=2[venc][vmon]",
        f"[venc]drawtext={':'.join(draw)}[v]",
        f"[vmon]{pick},scale={MONITOR_WIDTH}:-2,format=rgb24[m]",
    ]
    if audio_input is not None:
        graph += [
            # async: absorb the jitter of wall-clock stamped audio without breaking it up.
            f"[{audio_input}]aresample=async=1000,asplit=2[aenc][amon]",
            f"[amon]aresample={AUDIO_MONITOR_RATE},aformat=sample_fmts=s16:channel_layouts=mono[am]",
        ]
    return ";".join(graph)


def build(
    icfg: InterviewConfig,
    cam: CameraConfig,
    inputs: Inputs,
    run_dir: Path,
    overlay_file: Path,
    font: Path | None,
    spawn_time: float,
    ffmpeg: str,
    audio_fd: int,
    progress_fd: int,
) -> list[str]:
    """argv for one capture run of `cam` writing into `run_dir`; fds are the pipe write ends."""
    timeout_us = int(icfg.read_timeout_seconds * 1_000_000)
    has_audio = inputs.audio is not None
    gop = max(1, round(cam.fps * 2))  # a keyframe every 2 s: segments end within 2 s of target
    args = [ffmpeg, "-hide_banner", "-nostats", "-loglevel", "info", "-nostdin"]
    args += ["-progress", f"pipe:{progress_fd}", "-stats_period", "1"]
    audio_input, video_input = None, "0:v"
    if inputs.audio is not None and inputs.audio.kind == "camera":
        audio_input = "0:a"  # the camera's own stream carries the sound (RTSP cameras)
    elif inputs.audio is not None:
        # The microphone first: ffmpeg reads no input until it has opened all of them, and a
        # few KiB of sound wait in a socket harmlessly, whereas a camera's frames, waiting,
        # make it skip frames.
        args += _input_args(inputs.audio, None, timeout_us)
        audio_input, video_input = "0:a", "1:v"
    args += _input_args(inputs.video, cam, timeout_us)
    graph = filter_graph(overlay_file, font, icfg.monitor_fps, audio_input, video_input)
    args += ["-filter_complex", graph]
    args += ["-copyts"]
    # output 0: the evidence
    args += ["-map", "[v]"]
    if has_audio:
        args += ["-map", "[aenc]"]
    args += [
        "-c:v",
        "libx264",
        "-preset",
        icfg.video_preset,
        "-tune",
        "zerolatency",
        "-crf",
        str(icfg.video_crf),
        "-g",
        str(gop),
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "passthrough",
    ]
    if has_audio:
        args += ["-c:a", "aac", "-b:a", f"{icfg.audio_bitrate_kbps}k"]
    args += [
        "-output_ts_offset",
        f"-{spawn_time:.3f}",
        "-f",
        "segment",
        "-segment_time",
        f"{icfg.segment_seconds:g}",
        "-segment_format",
        "mpegts",
        # Without this the segment muxer keeps the whole open segment in memory until the cut:
        # a crash would lose up to a segment. Per packet, it reaches the file at once.
        "-segment_format_options",
        "flush_packets=1",
        "-reset_timestamps",
        "1",
        "-segment_list",
        str(run_dir / SEGMENT_LIST),
        "-segment_list_type",
        "csv",
        str(run_dir / SEGMENT_PATTERN),
    ]
    # output 1: pictures for the watcher
    args += ["-map", "[m]", "-c:v", "ppm", "-fps_mode", "passthrough", "-f", "image2pipe"]
    args += ["pipe:1"]
    # output 2: sound level for the watcher
    if has_audio:
        args += ["-map", "[am]", "-c:a", "pcm_s16le", "-f", "s16le", f"pipe:{audio_fd}"]
    return args
