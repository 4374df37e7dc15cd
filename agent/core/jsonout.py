"""Readable JSON for big documents: indented, except long lists, which are encoded compactly.

`json.dumps(indent=2)` runs the pure-Python encoder, about ten times slower than the C one;
a year's `report --json` at a million recordings spent most of its time there. Lists named
in `compact` are encoded by the C encoder in one call and spliced back in place.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # the C encoder (no indent)


def dumps(doc: dict[str, Any], compact: tuple[str, ...] = ("recordings",)) -> str:
    marks: dict[str, str] = {}
    head = dict(doc)
    for key in compact:
        if isinstance(head.get(key), list) and head[key]:
            mark = f"@@{uuid.uuid4().hex}@@"
            # One C-encoder call for the whole list: per-item calls cost a third of a large
            # report's time. The list is one (long) line; the rest stays indented.
            marks[json.dumps(mark)] = _ENCODER.encode(head[key])
            head[key] = mark
    text = json.dumps(head, ensure_ascii=False, indent=2)
    for mark, rendered in marks.items():
        text = text.replace(mark, rendered, 1)
    return text
