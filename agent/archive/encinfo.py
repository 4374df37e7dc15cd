"""How an archived object is kept confidential, as the ledger recorded it at upload.

The `recording.archived` custody event carries `encryption` (agent.archive.s3.sse and
agent.archive.s3.sealed: mode "client" with the suite and the key ids the data key is wrapped
for, or "sse-s3"/"sse-kms"/"none"); the sidecar repeats it so the agency's platform knows which
key opens a "client" object. Objects archived before this version have none recorded.
"""

from __future__ import annotations

import json
from typing import Any

from agent.station.context import Context


def recorded(ctx: Context, rid: str) -> dict[str, Any] | None:
    """The `encryption` of the recording's latest `recording.archived` event, or None."""
    row = ctx.ledger.one(
        "SELECT payload FROM custody WHERE recording_id=? AND type='recording.archived'"
        " ORDER BY seq DESC LIMIT 1",
        (rid,),
    )
    if row is None:
        return None
    found = json.loads(row["payload"]).get("encryption")
    return found if isinstance(found, dict) else None
