"""The record's context (issue 16, item 4): confidentiality, the party concerned, the stage.

* `confidentiality` (密级): none or one of the seeds' three categories — personal privacy
  (个人隐私), commercial secret (商业秘密), state secret (国家秘密); export reads it.
* `stage` (执法环节): where in the enforcement process the recording was made.
* `party` (执法对象): free text naming the person or company concerned. It is kept in the
  ledger only: never on MQTT, never in archive sidecars or object metadata, never in logs. The
  custody log, whose segments are shipped to the WORM archive, carries a salted SHA-256 of it
  instead (`custody_fields`); the salt stays in the ledger, so whoever holds the ledger can
  check the custody event against the table and nobody reading the archive can guess a name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any

from agent.core.errors import TagError

# Value -> (Chinese label, English label); Chinese labels are accepted as input too.
CONFIDENTIALITY: dict[str, tuple[str, str]] = {
    "none": ("无", "none"),
    "personal_privacy": ("个人隐私", "personal privacy"),
    "commercial_secret": ("商业秘密", "commercial secret"),
    "state_secret": ("国家秘密", "state secret"),
}
STAGES: dict[str, tuple[str, str]] = {
    "site_inspection": ("现场检查", "site inspection"),
    "evidence_collection": ("调查取证", "evidence collection"),
    "service_of_documents": ("文书送达", "service of documents"),
    "hearing": ("听证", "hearing"),
    "compulsory_measure": ("行政强制措施", "compulsory measure"),
    "execution": ("执行", "execution"),
    "other": ("其他", "other"),
}
LABELS: dict[str, tuple[str, str]] = {
    "confidentiality": ("密级", "confidentiality"),
    "party": ("执法对象", "party concerned"),
    "stage": ("执法环节", "enforcement stage"),
}
PARTY_MAX = 200
# Fields that never leave the ledger (MQTT replies, sidecars, object metadata drop them).
LEDGER_ONLY = ("party",)


def _choice(key: str, text: str, choices: Mapping[str, tuple[str, str]]) -> str:
    wanted = text.strip()
    for value, (zh, _en) in choices.items():
        if wanted.lower() == value or wanted == zh:
            return value
    listed = ", ".join(f"{v} ({zh})" for v, (zh, _) in choices.items())
    raise TagError(f"{key} {wanted!r} is not one of {listed}")


def check_confidentiality(text: str) -> str:
    return _choice("confidentiality", text, CONFIDENTIALITY)


def check_stage(text: str) -> str:
    return _choice("stage", text, STAGES)


def check_party(text: str) -> str:
    # Length and most control characters are checked by the Validator, which lets newlines
    # through for `proves`; a name has none. Never echo the value: errors may go on MQTT.
    if any(c in text for c in "\n\r\t"):
        raise TagError("party: contains control characters (a line break or tab); give one line")
    return text


def is_confidential(doc: Mapping[str, Any] | None) -> bool:
    """True when the document marks the footage confidential (any category but none)."""
    value = (doc or {}).get("confidentiality")
    return bool(value) and value != "none"


def public(doc: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document without ledger-only fields: what may leave the station."""
    return {k: v for k, v in (doc or {}).items() if k not in LEDGER_ONLY}


def new_salt() -> str:
    return secrets.token_hex(16)


def party_digest(salt: str, party: str) -> str:
    return "sha256:" + hashlib.sha256(bytes.fromhex(salt) + party.encode("utf-8")).hexdigest()


def custody_fields(doc: Mapping[str, Any], salt: str | None) -> dict[str, Any]:
    """The document as the custody log carries it: the party as a salted digest."""
    out = dict(doc)
    for key in LEDGER_ONLY:
        value = out.get(key)
        if value is not None:
            out[key] = party_digest(salt or "", str(value))
    return out


def display(key: str, value: Any) -> str:
    """A stored value with its Chinese label for tables, e.g. `hearing (听证)`."""
    table = {"confidentiality": CONFIDENTIALITY, "stage": STAGES}.get(key)
    if value is None or value == "":
        return "-"
    if table is None or value not in table:
        return str(value)
    return f"{value} ({table[value][0]})"
