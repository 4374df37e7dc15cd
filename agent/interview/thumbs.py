"""A camera's thumbnails: its latest picture, and a copy of it for each closed segment.

They are pictures of the interview, so when the station encrypts its copies (issue 19) they
are written as envelopes with the same recipients as the segments, and named `.jpg.sealed` so
no viewer mistakes them for JPEGs. A thumbnail is a convenience: failing to write one is
logged at debug level and never costs the record anything.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from agent.core import envelope
from agent.interview.watch import PictureWatch

logger = logging.getLogger(__name__)


class Thumbnails:
    def __init__(self, folder: Path, camera: str, seal: envelope.Recipients | None) -> None:
        self.folder = folder
        self.camera = camera
        self.seal = seal
        self.suffix = ".jpg" if seal is None else ".jpg.sealed"
        self.latest = folder / f"{camera}{self.suffix}"

    def write_latest(self, picture: PictureWatch) -> None:
        try:
            picture.write_thumbnail(self.latest, self.seal)
        except OSError as exc:
            logger.debug("camera %s: thumbnail not written: %s", self.camera, exc)

    def keep_for_segment(self, session_id: str, segment_stem: str) -> None:
        dest = self.folder / session_id / f"{self.camera}_{segment_stem}{self.suffix}"
        try:
            if self.latest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.latest, dest)
        except OSError as exc:
            logger.debug("camera %s: thumbnail %s not written: %s", self.camera, dest, exc)
