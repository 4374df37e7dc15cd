"""Find external tools tests depend on; skip without them, but fail under CI=true.

A skipped test in CI would hide a broken image (ffmpeg not installed) behind a green run,
so CI turns every "tool missing" skip into a failure, as docs/architecture.md asks.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Return the absolute path of executable `name`, or skip (fail under CI=true)."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"required tool {name!r} not found on PATH"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: missing tools fail instead of skipping)")
    pytest.skip(message)
