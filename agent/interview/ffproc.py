"""One running ffmpeg capture process and the threads that read what it says.

Four readers, each on its own pipe so none can block another: pictures (PPM on stdout),
sound (PCM on a pipe), progress (key=value on a pipe) and the log (stderr). A reader that
stopped reading would stall ffmpeg and with it the recording, so readers do nothing slow.

The child gets PR_SET_PDEATHSIG: if the agent is killed (kill -9, OOM), the kernel sends ffmpeg
SIGTERM, on which ffmpeg finishes its open segment cleanly instead of recording on, orphaned,
into a directory nobody watches.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

logger = logging.getLogger(__name__)

PictureFn = Callable[[np.ndarray, float], None]  # RGB picture, wall-clock arrival
SoundFn = Callable[[float, float], None]  # level in dBFS, wall-clock arrival
_PR_SET_PDEATHSIG = 1
_SOUND_BLOCK_S = 0.1

# Lines worth nothing in a diagnosis: ffmpeg repeats them for every scaler it sets up.
_NOISE = re.compile(r"deprecated pixel format used|Ignoring maximum wav data size")
_OUTPUT_ERRORS = re.compile(
    r"No space left on device|Read-only file system|Failed to open segment|Error writing trailer"
    r"|av_interleaved_write_frame\(\)|Error muxing|Could not write header|Disk quota exceeded",
    re.IGNORECASE,
)
_INPUT_START = re.compile(r"^Input #(\d+),")
_START = re.compile(r"^\s+Duration: .*?, start: (-?\d+(?:\.\d+)?)")
_STREAM_ENDED = re.compile(r"Stream ends prematurely|End of file|Connection reset", re.I)
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact_line(line: str) -> str:
    """ffmpeg prints URLs as given, user:password included: never keep that."""
    return _CREDENTIALS.sub(r"\1***@", line)


@dataclass
class ProcessReport:
    """What the readers learned; read by the camera loop (plain fields, GIL-atomic updates)."""

    input_start: dict[int, float] = field(default_factory=dict)  # 0 video, 1 audio -> wall clock
    first_picture: float | None = None
    last_picture: float | None = None
    first_sound: float | None = None
    last_sound: float | None = None
    pictures: int = 0
    progress: dict[str, str] = field(default_factory=dict)
    input_error: dict[int, str] = field(default_factory=dict)  # 0 video, 1 audio
    output_error: str | None = None
    log_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))


def _pdeathsig() -> Callable[[], None]:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        prctl = libc.prctl
    except OSError:  # pragma: no cover - not glibc: orphans are then cleaned up at restart
        return lambda: None

    def set_it() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_it


_SET_PDEATHSIG = _pdeathsig()


class FfmpegProcess:
    def __init__(
        self,
        build_argv: Callable[[int, int], list[str]],
        env: dict[str, str],
        name: str,
        targets: tuple[str, str | None],
        on_picture: PictureFn,
        on_sound: SoundFn,
        audio_first: bool = False,
    ) -> None:
        self.build_argv = build_argv
        self.env = env
        self.name = name
        self.targets = targets
        self.on_picture = on_picture
        self.on_sound = on_sound
        self.report = ProcessReport()
        # ffmpeg's input numbers -> our roles (0 video, 1 audio)
        self.roles = {0: 1, 1: 0} if audio_first else {0: 0, 1: 1}
        self.proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self) -> None:
        audio_r, audio_w = os.pipe()
        prog_r, prog_w = os.pipe()
        try:
            argv = self.build_argv(audio_w, prog_w)
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(audio_w, prog_w),
                env=self.env,
                preexec_fn=_SET_PDEATHSIG,  # noqa: PLW1509 - only an async-signal-safe prctl
            )
        finally:
            os.close(audio_w)
            os.close(prog_w)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        audio = os.fdopen(audio_r, "rb", buffering=0)
        prog = os.fdopen(prog_r, "rb")
        for target, stream, label in (
            (self._read_pictures, self.proc.stdout, "pictures"),
            (self._read_sound, audio, "sound"),
            (self._read_progress, prog, "progress"),
            (self._read_log, self.proc.stderr, "log"),
        ):
            t = threading.Thread(
                target=self._guard,
                args=(target, stream),
                name=f"ff-{self.name}-{label}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (ffmpeg closes the open segment and the list), then SIGKILL if it hangs."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "ffmpeg of %s did not stop within %.0f s; killing it", self.name, timeout
                )
                proc.kill()
                proc.wait(5)
        for t in self._threads:
            t.join(timeout=5)
        return proc.returncode

    # --- readers ---------------------------------------------------------------------------

    def _guard(self, target: Callable[[IO[bytes]], None], stream: IO[bytes]) -> None:
        try:
            with stream:
                target(stream)
        except Exception:  # noqa: BLE001 - a reader must never take the agent down
            logger.exception("ffmpeg of %s: reader failed", self.name)

    def _read_pictures(self, f: IO[bytes]) -> None:
        while True:
            header = _ppm_header(f)
            if header is None:
                return
            w, h = header
            data = f.read(w * h * 3)
            if len(data) < w * h * 3:
                return
            now = time.time()
            r = self.report
            r.pictures += 1
            if r.first_picture is None:
                r.first_picture = now
            r.last_picture = now
            self.on_picture(np.frombuffer(data, np.uint8).reshape(h, w, 3), now)

    def _read_sound(self, f: IO[bytes]) -> None:
        block = int(8000 * _SOUND_BLOCK_S) * 2
        buf = b""
        while True:
            chunk = f.read(block)
            if not chunk:
                return
            buf += chunk
            while len(buf) >= block:
                samples = np.frombuffer(buf[:block], "<i2").astype(np.float64)
                buf = buf[block:]
                rms = math.sqrt(float(np.mean(samples * samples))) / 32768.0
                level = 20 * math.log10(rms) if rms > 0 else -math.inf
                now = time.time()
                r = self.report
                if r.first_sound is None:
                    r.first_sound = now
                r.last_sound = now
                self.on_sound(level, now)

    def _read_progress(self, f: IO[bytes]) -> None:
        block: dict[str, str] = {}
        for raw in f:
            key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
            block[key] = value
            if key == "progress":
                self.report.progress = block
                block = {}

    def _read_log(self, f: IO[bytes]) -> None:
        current_input: int | None = None
        for raw in f:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if not line or _NOISE.search(line):
                continue
            self.report.log_tail.append(redact_line(line))
            m = _INPUT_START.match(line)
            if m:
                current_input = int(m.group(1))
                continue
            m = _START.match(line)
            if m and current_input in self.roles:
                role = self.roles[current_input]
                self.report.input_start.setdefault(role, float(m.group(1)))
                continue
            self._classify(line)

    def _classify(self, line: str) -> None:
        r = self.report
        for idx, target in enumerate(self.targets):
            if target and line.startswith(target + ":"):
                why = redact_line(line[len(target) + 1 :].strip())
                r.input_error.setdefault(idx, why)
                logger.warning("%s: %s input: %s", self.name, ("video", "audio")[idx], why)
                return
        line = redact_line(line)
        if _OUTPUT_ERRORS.search(line):
            if r.output_error is None:
                logger.error("%s: writing segments failed: %s", self.name, line)
            r.output_error = r.output_error or line
        elif _STREAM_ENDED.search(line) and "[http" in line:
            # Which input ended is named in the next line ("<url>: Input/output error").
            logger.info("%s: %s", self.name, line)


def _ppm_header(f: IO[bytes]) -> tuple[int, int] | None:
    """Read a binary PPM header (P6 W H MAXVAL + one whitespace); None at end of stream."""
    tokens: list[bytes] = []
    tok = b""
    while len(tokens) < 4:
        c = f.read(1)
        if not c:
            return None
        if c.isspace():
            if tok:
                tokens.append(tok)
                tok = b""
        else:
            tok += c
    if tokens[0] != b"P6" or tokens[3] != b"255":
        raise ValueError(f"unexpected picture header {b' '.join(tokens)!r}")
    return int(tokens[1]), int(tokens[2])


def describe_exit(report: ProcessReport, returncode: int | None) -> str:
    """One line for logs and gap details: why this run ended."""
    if report.output_error:
        return f"writing segments failed: {report.output_error}"
    for idx, what in ((0, "camera"), (1, "microphone")):
        if idx in report.input_error:
            return f"{what}: {report.input_error[idx]}"
    tail = [line for line in report.log_tail if "rror" in line or "fail" in line.lower()]
    if tail:
        return tail[-1]
    return f"ffmpeg exited with status {returncode}"


def progress_counts(report: ProcessReport) -> dict[str, Any]:
    p = report.progress
    out: dict[str, Any] = {}
    for key in ("frame", "drop_frames", "dup_frames"):
        try:
            out[key] = int(p.get(key, "0"))
        except ValueError:
            out[key] = 0
    try:
        out["fps"] = float(p.get("fps", "0"))
    except ValueError:
        out["fps"] = 0.0
    return out
