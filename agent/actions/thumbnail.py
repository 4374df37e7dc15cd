"""A small JPEG of a recording's first frame, for the dock console's list of recordings.

Read from the verified spool copy (never the recorder); None when the copy is gone (archived
and cleaned up), the file is audio, or its first frame cannot be decoded (such a file is
still evidence; it just has no picture). OpenCV is imported here, lazily, as elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

WIDTH = 160
PHOTO = (".jpg", ".jpeg")


def first_frame_jpeg(path: Path, width: int = WIDTH) -> bytes | None:
    import cv2

    try:
        if path.suffix.lower() in PHOTO:
            frame = cv2.imread(str(path))
        else:
            cap = cv2.VideoCapture(str(path))
            try:
                ok, frame = cap.read()
            finally:
                cap.release()
            frame = frame if ok else None
        if frame is None or not frame.size:
            return None
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (width, max(1, round(h * width / w))))
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
        return bytes(data) if ok else None
    except (cv2.error, OSError) as exc:
        logger.debug("no thumbnail for %s: %s", path.name, exc)
        return None
