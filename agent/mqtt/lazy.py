"""Optional features of other parts of the agent, looked up when used.

Tagging, the compliance engine, interview sessions and the S3 backlog may or may not be
installed on a station; MQTT uses them when they are and answers without them when not.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def optional(module: str, attr: str) -> Callable[..., Any] | None:
    """`module.attr` if that module exists, else None (an import error inside it still raises)."""
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:  # a parent package is missing
        return None
    fn = getattr(importlib.import_module(module), attr, None)
    return fn if callable(fn) else None
