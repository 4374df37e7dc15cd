"""Case metadata of a recording: the seed's fields, their validation, append-only versions.

The seed (000) asks that each recording carry its case number (案件编号), capture time
(采集时间), capture place (采集地点), collecting officer (采集人) and what it proves (证明对象);
the agent adds recorder serial, officer, unit, category and importance. Every change is a new
row in `metadata_versions` holding the whole document, plus a `metadata.tagged` custody event
with the same document, in one transaction: nothing is overwritten, and `verify` can check
the table against the hash-chained log.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.config.compliance import METADATA_KEYS
from agent.config.loader import AgentConfig
from agent.core import clock
from agent.core.errors import TagError
from agent.ledger import custody
from agent.ledger import recordings as rec
from agent.tagging import context_fields as cf

# Field -> (Chinese label, English label), for reports, `tag --show` and Chinese keys.
LABELS: dict[str, tuple[str, str]] = {
    "case_number": ("案件编号", "case number"),
    "capture_time": ("采集时间", "capture time"),
    "capture_place": ("采集地点", "capture place"),
    "collector": ("采集人", "collecting officer"),
    "proves": ("证明对象", "what it proves"),
    "serial": ("记录仪编号", "recorder serial"),
    "officer_id": ("警员编号", "officer id"),
    "unit_id": ("单位", "unit"),
    "category": ("类别", "category"),
    "importance": ("重要程度", "importance"),
    **cf.LABELS,
}
ALIASES = {zh: key for key, (zh, _) in LABELS.items()}

IMPORTANCE = {
    "normal": "normal", "一般": "normal",
    "important": "important", "重要": "important",
    "critical": "critical", "重大": "critical", "关键": "critical",
}  # fmt: skip

_MAX_LEN = {
    "capture_place": 200, "proves": 2000, "collector": 64, "category": 64,
    "party": cf.PARTY_MAX, "confidentiality": 64, "stage": 64,
}  # fmt: skip
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # newline and tab are fine in `proves`


def empty() -> dict[str, Any]:
    return dict.fromkeys(METADATA_KEYS)


def normalize_keys(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Map Chinese labels (案件编号 ...) to field names; unknown keys are a TagError."""
    out: dict[str, Any] = {}
    for raw_key, value in fields.items():
        key = ALIASES.get(str(raw_key).strip(), str(raw_key).strip())
        if key not in METADATA_KEYS:
            raise TagError(
                f"unknown metadata field {raw_key!r}; valid fields: {', '.join(METADATA_KEYS)}"
            )
        out[key] = value
    return out


class Validator:
    """Checks and normalises field values against the config, the roster and the clock."""

    def __init__(
        self,
        cfg: AgentConfig,
        officer_ids: set[str] | None,
        roster_note: str = "",
        now: datetime | None = None,
    ) -> None:
        self.cfg = cfg
        self.tz = ZoneInfo(cfg.station.timezone)
        self.officer_ids = officer_ids  # None: no roster configured, any officer goes
        self.roster_note = roster_note
        self.now = now or clock.now()

    def validate(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Normalised copy of `fields`; a value of None or "" clears the field."""
        out: dict[str, Any] = {}
        for key, value in normalize_keys(fields).items():
            text = self._text(key, value)
            out[key] = None if text is None else getattr(self, f"_check_{key}", _same)(text)
        return out

    def _text(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime) and key == "capture_time":
            return value.isoformat()
        if isinstance(value, bool) or not isinstance(value, str | int):
            shown = "" if key in cf.LEDGER_ONLY else f" {value!r}"
            raise TagError(f"{key}: expected text, got {type(value).__name__}{shown}")
        text = str(value).strip()
        if not text:
            return None
        if _CONTROL.search(text):
            raise TagError(f"{key}: contains control characters; give plain text")
        limit = _MAX_LEN.get(key)
        if limit and len(text) > limit:
            raise TagError(f"{key}: {len(text)} characters, at most {limit} allowed")
        return text

    def _check_case_number(self, text: str) -> str:
        pattern = self.cfg.tagging.case_number_pattern
        if not re.fullmatch(pattern, text):
            example = self.cfg.tagging.case_number_example
            hint = f", e.g. {example}" if example else ""
            raise TagError(
                f"case_number {text!r} does not match the configured format "
                f"(tagging.case_number_pattern = {pattern}{hint})"
            )
        return text

    def _check_capture_time(self, text: str) -> str:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise TagError(
                f"capture_time {text!r} is not an ISO-8601 time (e.g. 2026-09-30T08:15:00+08:00;"
                f" without an offset it is {self.cfg.station.timezone} time)"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.tz)
        if when > self.now:
            raise TagError(
                f"capture_time {when.isoformat()} is in the future (station time is "
                f"{self.now.astimezone(self.tz).isoformat(timespec='seconds')}); check the value "
                "or the recorder's clock"
            )
        return when.astimezone(self.tz).isoformat()

    def _check_officer(self, key: str, text: str) -> str:
        if self.officer_ids is not None and text not in self.officer_ids:
            where = f" {self.cfg.roster.file}" if self.cfg.roster.file else ""
            raise TagError(
                f"{key} {text!r} is not an officer in the roster{where}{self.roster_note}; "
                "give an officer_id listed there, or add the officer to the roster"
            )
        return text

    def _check_officer_id(self, text: str) -> str:
        return self._check_officer("officer_id", text)

    def _check_collector(self, text: str) -> str:
        return self._check_officer("collector", text)

    def _check_id(self, key: str, text: str) -> str:
        if not _ID.match(text):
            raise TagError(f"{key} {text!r} may contain only A-Z a-z 0-9 _ . - (1-64 characters)")
        return text

    def _check_serial(self, text: str) -> str:
        return self._check_id("serial", text)

    def _check_unit_id(self, text: str) -> str:
        return self._check_id("unit_id", text)

    def _check_category(self, text: str) -> str:
        allowed = set(self.cfg.tagging.categories)
        if allowed and text not in allowed | set(self.cfg.compliance.rules):
            choices = ", ".join(sorted(allowed | set(self.cfg.compliance.rules)))
            raise TagError(
                f"category {text!r} is not one of {choices} (tagging.categories, compliance.rules)"
            )
        return text

    def _check_importance(self, text: str) -> str:
        value = IMPORTANCE.get(text.lower())
        if value is None:
            raise TagError(
                f"importance {text!r} is not one of normal, important, critical (一般/重要/重大)"
            )
        return value

    def _check_confidentiality(self, text: str) -> str:
        return cf.check_confidentiality(text)

    def _check_stage(self, text: str) -> str:
        return cf.check_stage(text)

    def _check_party(self, text: str) -> str:
        return cf.check_party(text)


def _same(text: str) -> str:
    return text


# --- ledger ---------------------------------------------------------------------------------


def stored(conn: sqlite3.Connection, rid: str) -> tuple[int, dict[str, Any]]:
    """(version, fields as tagged) of a recording's current metadata; (0, {}) when untagged.
    The one current-metadata reader: `current()` fills in the empty fields for display."""
    row = conn.execute(
        "SELECT m.version, m.fields FROM recordings r JOIN metadata_versions m"
        " ON m.recording_id = r.id AND m.version = r.metadata_version WHERE r.id = ?",
        (rid,),
    ).fetchone()
    if row is None:
        return 0, {}
    try:
        fields = json.loads(row["fields"])
    except (TypeError, ValueError):
        fields = {}
    return int(row["version"]), (fields if isinstance(fields, dict) else {})


def current(conn: sqlite3.Connection, rid: str) -> tuple[int, dict[str, Any] | None]:
    """(version, document) of a recording; (0, None) when it was never tagged."""
    version, fields = stored(conn, rid)
    if version == 0:
        return 0, None
    return version, {**empty(), **fields}


def history(conn: sqlite3.Connection, rid: str) -> list[dict[str, Any]]:
    """Every version of a recording's metadata, oldest first."""
    return [
        {
            "version": r["version"],
            "at": r["at"],
            "actor": r["actor"],
            "origin": r["origin"],
            # The front end that made it (cli, console, mqtt); None for sidecars and rules.
            "via": r["origin"] if r["origin"] in ("cli", "console", "mqtt") else None,
            "reason": r["reason"],
            "fields": {**empty(), **json.loads(r["fields"])},
        }
        for r in conn.execute(
            "SELECT * FROM metadata_versions WHERE recording_id = ? ORDER BY version", (rid,)
        )
    ]


def add_version(
    conn: sqlite3.Connection,
    rid: str,
    doc: dict[str, Any],
    changed: list[str],
    *,
    actor: str,
    reason: str | None,
    origin: str,
) -> int:
    """Append version N+1 with its custody event; the caller's transaction makes it atomic."""
    row = conn.execute("SELECT metadata_version FROM recordings WHERE id = ?", (rid,)).fetchone()
    version = int(row[0]) + 1
    stored = {k: v for k, v in doc.items() if v is not None}
    at = clock.iso(clock.now()) or ""
    salt = cf.new_salt() if any(k in stored for k in cf.LEDGER_ONLY) else None
    conn.execute(
        "INSERT INTO metadata_versions(recording_id, version, fields, actor, reason, origin, at,"
        " party_salt) VALUES(?,?,?,?,?,?,?,?)",
        (rid, version, custody.canonical(stored), actor, reason, origin, at, salt),
    )
    rec.set_metadata_version(conn, rid, version)
    custody.append(
        conn,
        "metadata.tagged",
        {
            "version": version,
            # The party stays in the ledger: custody segments are shipped to the archive.
            "fields": cf.custody_fields(stored, salt),
            "changed": changed,
            "origin": origin,
            "reason": reason,
        },
        recording_id=rid,
        actor=actor,
    )
    return version


def verify_versions(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(recording id, problem) where the table disagrees with the custody log.

    Joins streamed from SQLite (each version with the last event that logged it, events with
    no version, recordings not at their latest version): memory stays flat at any size."""
    problems = []
    for row in conn.execute(
        "SELECT m.recording_id, m.version, m.fields, (SELECT c.payload FROM custody c"
        " WHERE c.recording_id = m.recording_id AND c.type = 'metadata.tagged'"
        " AND json_extract(c.payload, '$.version') = m.version ORDER BY c.seq DESC LIMIT 1)"
        " AS logged, m.party_salt FROM metadata_versions m"
    ):
        rid, version = row["recording_id"], int(row["version"])
        if row["logged"] is None:
            problems.append((rid, f"metadata version {version} has no custody event"))
        elif custody.canonical(
            cf.custody_fields(json.loads(row["fields"]), row["party_salt"])
        ) != custody.canonical(json.loads(row["logged"])["fields"]):
            problems.append((rid, f"metadata version {version} differs from its custody event"))
    for ev in conn.execute(
        "SELECT c.recording_id, json_extract(c.payload, '$.version') FROM custody c"
        " WHERE c.type = 'metadata.tagged' AND NOT EXISTS (SELECT 1 FROM metadata_versions m"
        " WHERE m.recording_id = c.recording_id"
        " AND m.version = json_extract(c.payload, '$.version'))"
    ):
        problems.append((ev[0], f"metadata version {int(ev[1])} in the custody log is missing"))
    for row in conn.execute(
        "SELECT r.id FROM recordings r WHERE r.metadata_version != COALESCE("
        "(SELECT MAX(m.version) FROM metadata_versions m WHERE m.recording_id = r.id), 0)"
    ):
        problems.append((row["id"], "current metadata version is not the latest one"))
    return problems
