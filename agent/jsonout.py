"""Readable JSON for big documents: indented, except long lists, one compact item per line.

`json.dumps(indent=2)` runs the pure-Python encoder, about ten times slower than the C one;
a year's `report --json` at a million recordings spent most of its time there. Lists named
in `compact` are encoded by the C encoder, one element per line, and spliced back in place.
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
            items = ",\n    ".join(_ENCODER.encode(x) for x in head[key])
            marks[json.dumps(mark)] = "[\n    " + items + "\n  ]"
            head[key] = mark
    text = json.dumps(head, ensure_ascii=False, indent=2)
    for mark, rendered in marks.items():
        text = text.replace(mark, rendered, 1)
    return text
