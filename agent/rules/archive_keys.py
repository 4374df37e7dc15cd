"""Object key layout of the archive (documented in docs/archive.md).

    <prefix>/<unit>/<yyyy>/<mm>/<dd>/<serial>/<recording id><ext>          the recording (locked)
    <prefix>/<unit>/<yyyy>/<mm>/<dd>/<serial>/<recording id><ext>.meta.json  its sidecar (versioned)
    <prefix>/_cases/<case key>/<recording id>.json                         case index entries
    <prefix>/_custody/<station>/checkpoints/<head seq>.json                 signed checkpoints
    <prefix>/_custody/<station>/keys/<key fingerprint>.pem                  station public keys
    <prefix>/_custody/<station>/segments/<first seq>-<last seq>.json        signed custody events

Keys are built only from ids the agent controls: the unit and serial reduced to
[A-Za-z0-9_.-], the recording's UUIDv7, a short lowercase extension and the recording's
local date. The original file name (any bytes, GBK, spaces, newlines) never becomes part of a
key; it is kept in the sidecar. Case numbers (e.g. 环罚〔2026〕12号) are mapped to an ASCII slug
plus a hash, so every case gets one stable, safe folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime
from zoneinfo import ZoneInfo

UNASSIGNED = "_unassigned"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_segment(text: str | None, fallback: str = UNASSIGNED) -> str:
    """One key segment: [A-Za-z0-9_.-], no leading dot, at most 64 characters."""
    seg = _SAFE.sub("_", text or "").lstrip(".")[:64]
    return seg or fallback


def extension(source_path: str | None) -> str:
    ext = os.path.splitext(source_path or "")[1].lower()
    ext = "." + re.sub(r"[^a-z0-9]", "", ext)[:8]
    return ext if len(ext) > 1 else ".bin"


def recording_key(
    prefix_key: str,
    *,
    recording_id: str,
    unit: str | None,
    serial: str | None,
    start: datetime | None,
    source_path: str | None,
    timezone: str,
) -> str:
    """`<prefix>/<unit>/<yyyy>/<mm>/<dd>/<serial>/<id><ext>`; the date is station-local."""
    day = "0000/00/00"  # undated: same depth as every other key
    if start is not None:
        local = start.astimezone(ZoneInfo(timezone))
        day = f"{local:%Y}/{local:%m}/{local:%d}"
    parts = [safe_segment(unit), day, safe_segment(serial), recording_id + extension(source_path)]
    return "/".join(p for p in (prefix_key, *parts) if p)


def sidecar_key(object_key: str) -> str:
    return object_key + ".meta.json"


def case_segment(case_number: str) -> str:
    """A stable, safe folder name for a case number of any script."""
    digest = hashlib.sha256(case_number.encode("utf-8")).hexdigest()[:12]
    slug = _SAFE.sub("_", case_number).strip("_.")[:40]
    return f"{slug}-{digest}" if slug else digest


def case_index_key(prefix_key: str, case_number: str, recording_id: str) -> str:
    parts = ["_cases", case_segment(case_number), f"{recording_id}.json"]
    return "/".join(p for p in (prefix_key, *parts) if p)


def checkpoint_key(prefix_key: str, station: str, head_seq: int) -> str:
    parts = ["_custody", safe_segment(station), "checkpoints", f"{head_seq:012d}.json"]
    return "/".join(p for p in (prefix_key, *parts) if p)


def segment_key(prefix_key: str, station: str, first: int, last: int) -> str:
    parts = ["_custody", safe_segment(station), "segments", f"{first:012d}-{last:012d}.json"]
    return "/".join(p for p in (prefix_key, *parts) if p)


def pubkey_key(prefix_key: str, station: str, fingerprint: str) -> str:
    fp = safe_segment(fingerprint.replace(":", "-"))
    parts = ["_custody", safe_segment(station), "keys", f"{fp}.pem"]
    return "/".join(p for p in (prefix_key, *parts) if p)
