"""First-frame thumbnails of encrypted copies (agent.actions.thumbnail): decrypted in memory,
and a copy that fails authentication or lacks its key gives no picture (and no crash)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.actions.thumbnail import first_frame_jpeg
from agent.core import envelope


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    import cv2
    import numpy as np

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(5):
        writer.write(np.full((240, 320, 3), 40 * i, np.uint8))
    writer.release()
    return path


def _seal(plain: Path, kek: bytes, chunk: int = 4096) -> Path:
    sealer = envelope.Sealer(envelope.Recipients(kek), chunk_size=chunk)
    body = b"".join([sealer.header, *sealer.update(plain.read_bytes()), sealer.finish()])
    out = plain.with_name("sealed.mp4")
    out.write_bytes(body)
    return out


def test_an_encrypted_copy_gives_the_same_thumbnail_as_its_plaintext(clip: Path) -> None:
    kek = os.urandom(32)
    sealed = _seal(clip, kek)
    assert envelope.is_envelope(sealed.read_bytes()[:8])
    plain = first_frame_jpeg(clip)
    assert plain and plain[:2] == b"\xff\xd8"
    assert first_frame_jpeg(sealed, envelope.Keyring.of(kek)) == plain


def test_a_missing_key_or_an_altered_copy_gives_no_thumbnail(clip: Path) -> None:
    kek = os.urandom(32)
    sealed = _seal(clip, kek)
    assert first_frame_jpeg(sealed, None) is None
    assert first_frame_jpeg(sealed, envelope.Keyring.of(os.urandom(32))) is None
    data = bytearray(sealed.read_bytes())
    data[envelope.HEADER_SIZE + 100] ^= 1  # the first chunk: the moov is read later, too
    sealed.write_bytes(bytes(data))
    assert first_frame_jpeg(sealed, envelope.Keyring.of(kek)) is None
