"""USB storage that is not a known recorder (`detect.accept_unknown_usb = true`).

The udev rule mounts such a volume as `<mount root>/unknown-usb-<name>`; the agent copies and
hashes it like any volume but holds every recording as `quarantined` (never archived, never
released) until an operator accepts or rejects it. A recorder whose own label starts with the
prefix is held too: doubt keeps evidence where it is.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "unknown-usb-"


def is_unknown_volume(volume: str | Path) -> bool:
    """True for a volume the udev rule mounted as unknown USB storage."""
    return Path(volume).name.startswith(PREFIX)
