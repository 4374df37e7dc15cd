"""Untrusted identifiers: the one check for every id a recorder or a file name supplies.

Serial, vendor, officer id, unit id, volume label and the fields a naming pattern extracts
come from a device, a file on its volume or the OS mount name: any bytes an attacker (or a
broken recorder) chooses. They are checked here, once, at the edge:

- allowed: 1 to 64 characters of ``[A-Za-z0-9_.-]`` starting with a letter or digit, so no
  empty string, no ``.``/``..``/``.tmp``, no separator, no control character;
- refused: the recorder (or the one recording) is quarantined with the reason. A refused
  serial is replaced by a stand-in the agent derives (``refused-`` + 12 hex digits of the
  value's SHA-256), so the same bad serial always lands on the same ledger device; a refused
  officer, unit or vendor is dropped (vendor falls back to ``generic``).

None of these values becomes a path component anyway (the spool is laid out by device id,
see agent.spoollayout); this check keeps them out of names, topics and reports as well.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import replace

from drivers.base import DeviceIdentity

IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STAND_IN_PREFIX = "refused-"


def is_valid(value: str) -> bool:
    return bool(IDENT_RE.match(value))


def refusal(kind: str, value: str | None, source: str) -> str | None:
    """Why `value` (a `kind` from `source`) is refused, or None when it is acceptable/absent."""
    if value is None or is_valid(value):
        return None
    shown = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return (
        f"{kind} {shown[:80]!r} from {source} refused: identifiers must be 1-64 characters of "
        "A-Z a-z 0-9 _ . - starting with a letter or digit; held in quarantine until an "
        "operator accepts or rejects it (evidence-agent accept/reject)"
    )


def stand_in(value: str) -> str:
    """The serial the agent uses for a refused one: stable, prefixed and dot-free."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return STAND_IN_PREFIX + digest[:12]


def vet_identity(ident: DeviceIdentity) -> tuple[DeviceIdentity, list[str]]:
    """`ident` with every refused field replaced or dropped, and the reasons."""
    if ident.source == "interview":
        # Built by this station from its own config (station and camera ids, validated there)
        # and the operator's session input: nothing a recorder or a file supplied.
        return ident, []
    source = ident.source if ident.source != "label" else "volume label"
    reasons: list[str] = []
    changes: dict[str, str | None] = {}
    why = refusal("serial", ident.serial, source)
    if why:
        reasons.append(why)
        changes["serial"] = stand_in(ident.serial)
    why = refusal("vendor", ident.vendor, source)
    if why:
        reasons.append(why)
        changes["vendor"] = "generic"
    for kind in ("officer_id", "unit_id"):
        why = refusal(kind, getattr(ident, kind), source)
        if why:
            changes[kind] = None
            # An officer taken from one file's name quarantines that file (vet_name_field),
            # not every recording of the recorder.
            if not (kind == "officer_id" and ident.source == "filename"):
                reasons.append(why)
    if not changes:
        return ident, []
    return replace(ident, **changes), reasons  # type: ignore[arg-type]


def vet_name_field(kind: str, value: str | None, pattern: str) -> tuple[str | None, str | None]:
    """A field a naming pattern took from a file name: (value or None, refusal or None)."""
    why = refusal(kind, value, f"file name (naming pattern {pattern})")
    return (None, why) if why else (value, None)


def refused_reason(conn: sqlite3.Connection, recording_id: str) -> str | None:
    """The recorder's or the recording's identifier refusal, if any."""
    row = conn.execute(
        "SELECT COALESCE(r.identity_refused, d.identity_refused) FROM recordings r"
        " JOIN devices d ON d.id = r.device_id WHERE r.id=?",
        (recording_id,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])
