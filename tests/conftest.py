"""Shared pytest fixtures: the repo root on sys.path, a temp station config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# Tests never read the host's /etc/evidence-agent/agent.toml (the CLI's default config);
# tests of that default point this at a fixture root of their own.
os.environ.setdefault("EVIDENCE_AGENT_SYSCONFDIR", str(ROOT / "tests" / "no-sysconfdir"))

pytest_plugins = [
    "fixtures.station",
    "fixtures.mounts",
    "fixtures.compliance",
    "fixtures.mosquitto",
    "fixtures.recorders",
    "fixtures.faultfs",
    "fixtures.seaweed",
    "fixtures.archive",
    "fixtures.interview",
    "fixtures.access",
    "fixtures.browser",
]
