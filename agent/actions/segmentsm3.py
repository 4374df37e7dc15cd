"""`verify-archive` under 国密: the SM3 custody chain recomputed over the archived segments.

Segments shipped under `crypto.suite = "sm"` carry each event's `sm3` value (agent.archive.
segments). Walking the archived events in order, each value is recomputed as
agent.ledger.sm3chain defines it (the chain starts at a `crypto.suite_changed` event to "sm"
and ends at one to "intl"); an event that should carry one and does not, carries one it should
not, or whose value is not SM3 over its canonical bytes, is named. Segments shipped before
segments carried SM3, and those of a station that never used "sm", have no `sm3` key: they
stay valid, and the first event after them that does carry the key is taken as given (its
predecessor's value is not in the archive); once events carry the key, an event after them
without it was stripped. The values found are kept so the anchors' `head_sm3` can be checked
against them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.ledger import sm3chain


@dataclass
class Sm3Walk:
    values: dict[int, str | None] = field(default_factory=dict)  # seq -> archived sm3
    prev: str | None = None  # the previous archived event's SM3 value
    known: bool = False  # whether `prev` is known (the previous event had an `sm3` key)
    events: int = 0  # events whose SM3 value was recomputed

    def step(self, e: dict[str, Any], relkey: str) -> str | None:
        """Take the next archived event; returns a problem naming it, or None."""
        if "sm3" not in e:  # a station without SM3, or a segment from before segments had it
            known, self.known, self.prev = self.known, False, None
            if known and self.values:
                return (
                    f"archived event {e['seq']} ({relkey}) has no sm3 key after segments "
                    "that carry the SM3 chain (it was removed)"
                )
            return None
        seq, type_, value = int(e["seq"]), str(e["type"]), e["sm3"]
        self.values[seq] = value
        switch = sm3chain.starts(type_, _payload(type_, e["payload"]))
        prev, known = self.prev, self.known
        self.prev, self.known = value, True
        if not known and switch is None:
            return None  # the chain's previous value is not in the archive: taken as given
        wanted = switch if switch is not None else prev is not None
        if value is None and wanted:
            return f"archived event {seq} ({relkey}) has no SM3 value inside the SM3 chain"
        if value is None:
            return None
        if not wanted:
            return f"archived event {seq} ({relkey}) carries an SM3 value outside the SM3 chain"
        self.events += 1
        if _recomputed(e, prev) != value:
            return f"archived event {seq} ({relkey}) does not match its SM3 value: SM3 mismatch"
        return None

    def anchor_problem(self, st: dict[str, Any], relkey: str) -> str | None:
        """The anchor's `head_sm3` against the archived SM3 value of the event it names."""
        seq = st.get("head_seq")
        if "head_sm3" not in st or seq not in self.values:
            return None
        if self.values[seq] != st["head_sm3"]:
            return f"archived segment's SM3 value differs from anchor {relkey} (head_sm3)"
        return None


def _payload(type_: str, payload: Any) -> dict[str, Any]:
    if type_ != sm3chain.SUITE_EVENT:
        return {}
    try:
        out = json.loads(payload)
    except (ValueError, TypeError):
        return {}
    return out if isinstance(out, dict) else {}


def _recomputed(e: dict[str, Any], prev: str | None) -> str:
    try:
        return sm3chain.value(
            int(e["seq"]), e["at"], e["type"], e["recording_id"], e["actor"], e["payload"], prev
        )  # fmt: skip
    except (ValueError, TypeError, KeyError):
        return ""
