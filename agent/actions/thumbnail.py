"""A small JPEG of a recording's first frame, for the dock console's list of recordings.

Read from the verified spool copy (never the recorder); None when the copy is gone (archived
and cleaned up), the file is audio, or its first frame cannot be decoded (such a file is
still evidence; it just has no picture). The copy is read through agent.core.sealedio, so an
encrypted envelope is decrypted in memory and handed to OpenCV as a seekable stream (its
FFmpeg backend reads a Python stream since OpenCV 4.11): no plaintext is written to any disk.
A copy whose key is missing or that fails authentication has no thumbnail.
OpenCV is imported here, lazily, as elsewhere.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from agent.core import envelope
from agent.core.errors import EnvelopeError, EnvelopeKeyError
from agent.core.sealedio import PlainReader

logger = logging.getLogger(__name__)

WIDTH = 160
PHOTO = (".jpg", ".jpeg")
MAX_PHOTO = 64 << 20  # a still larger than this is no recorder's photo: no thumbnail


class _Stream(io.BufferedIOBase):
    """The plaintext as OpenCV reads it (read, seek). It never raises: an exception inside
    OpenCV's read callback crashes the process, so a copy failing authentication (or a read
    error) reads as its end and the frame simply does not decode."""

    def __init__(self, plain: PlainReader) -> None:
        super().__init__()
        self.plain = plain
        self.failed: Exception | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.failed is not None:
            return b""
        try:
            if size is None or size < 0:
                return self.plain.readall()
            return self.plain.read(size) or b""
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self.failed = exc
            return b""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        try:
            return self.plain.seek(offset, whence)
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            self.failed = exc
            return -1


def _first_frame(plain: PlainReader, photo: bool) -> Any:
    import cv2
    import numpy as np

    if photo:
        if plain.size > MAX_PHOTO:
            return None
        return cv2.imdecode(np.frombuffer(plain.readall(), np.uint8), cv2.IMREAD_COLOR)
    # OpenCV does not keep the stream alive: `stream` must outlive `cap` (else it crashes).
    stream = _Stream(plain)
    cap = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, [])  # type: ignore[call-overload]
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    if stream.failed is not None:
        logger.debug("thumbnail read of %s stopped: %s", plain.name, stream.failed)
    return frame if ok and stream.failed is None else None


def first_frame_jpeg(
    path: Path, keys: envelope.Keyring | None = None, width: int = WIDTH
) -> bytes | None:
    import cv2

    try:
        with PlainReader(path, keys) as plain:
            frame = _first_frame(plain, path.suffix.lower() in PHOTO)
        if frame is None or not frame.size:
            return None
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (width, max(1, round(h * width / w))))
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
        return bytes(data) if ok else None
    except (cv2.error, OSError, EnvelopeError, EnvelopeKeyError) as exc:
        logger.debug("no thumbnail for %s: %s", path.name, exc)
        return None
