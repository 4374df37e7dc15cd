"""Simulated network microphone: a WAV stream of a tone over HTTP on 127.0.0.1.

The stream is an endless PCM WAV (32-bit float mono; the RIFF sizes say "unknown length" the way
streaming encoders write them), paced in real time in 20 ms blocks. States (HttpSource):
frozen sends digital silence (a dead capsule), stalled sends nothing on open connections,
dropped refuses connections.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

import numpy as np

from simulators.avsource import HttpSource

BLOCK_S = 0.02


def wav_header(rate: int, channels: int = 1) -> bytes:
    """A 32-bit float WAV header for a stream of unknown length (sizes at the maximum).

    Float (format tag 3) rather than 16-bit PCM (tag 1) on purpose: for tag 1 FFmpeg's WAV
    demuxer first reads 64 KiB looking for S/PDIF data, which at 16 kHz mono is two seconds of
    waiting before the first sample, while the camera's frames pile up unread.
    """
    block_align = 4 * channels
    fmt = struct.pack("<HHIIHHH", 3, channels, rate, rate * block_align, block_align, 32, 0)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


class MicrophoneSim(HttpSource):
    content_type = "audio/wav"
    path = "/audio.wav"

    def __init__(
        self, name: str = "mic", rate: int = 16000, tone_hz: float = 440.0, port: int = 0
    ) -> None:
        super().__init__(name, port)
        if rate not in (8000, 16000, 22050, 32000, 44100, 48000):
            raise ValueError(f"microphone {name}: unsupported sample rate {rate}")
        self.rate = rate
        self.tone_hz = tone_hz
        self.samples_sent = 0

    def stream(self) -> Iterator[bytes]:
        yield wav_header(self.rate)
        per_block = int(self.rate * BLOCK_S)
        phase = 0
        amp = 0.25  # -12 dBFS
        step = 2 * math.pi * self.tone_hz / self.rate
        for _ in self.paced(BLOCK_S):
            if self.state == "stalled":
                yield b""
                continue
            if self.state == "frozen":
                block = np.zeros(per_block, "<f4")
            else:
                t = np.arange(phase, phase + per_block)
                block = (amp * np.sin(step * t)).astype("<f4")
            phase += per_block
            self.samples_sent += per_block
            yield block.tobytes()
