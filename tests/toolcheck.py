"""Find external tools tests depend on; skip without them, but fail under CI=true.

A skipped test in CI would hide a broken image (ffmpeg not installed) behind a green run,
so CI turns every "tool missing" skip into a failure, as docs/architecture.md asks.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    """Skip for a missing tool or capability (root, /dev/fuse, ...); fail under CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing tool or capability fails instead of skipping)")
    pytest.skip(message)


def require_tool(name: str) -> str:
    """Return the absolute path of executable `name`, or skip (fail under CI=true)."""
    path = shutil.which(name)
    if path is not None:
        return path
    unavailable(f"required tool {name!r} not found on PATH")
