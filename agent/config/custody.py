"""The `[custody]` config section: which station public key `verify` trusts.

The key next to the ledger (`<data_dir>/keys/`) is no evidence of anything to someone who can
rewrite the ledger: they can replace it too. A key pinned outside the data dir (a file only
root writes, or the fingerprint the fleet register noted at enrolment) is what `verify` checks
signatures with; without one it says UNPINNED.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from agent.config.base import Section


class CustodyConfig(Section):
    pubkey_file: Path | None = Field(
        None,
        description="PEM public key of the station, kept outside the data dir (e.g. "
        "/etc/evidence-agent/station.pub, root-owned): verify checks every signature with it.",
    )
    signing_key_file: Path | None = Field(
        None,
        description="The station's private Ed25519 custody signing key (PEM). Default: "
        "<station.data_dir>/keys/station.ed25519.pem. Set it to a file outside the data dir, "
        "in a folder only the service user reads (e.g. "
        "/etc/evidence-agent/keys/signing.ed25519.pem), so a copy of the data dir cannot sign; "
        "`evidence-agent keys move-signing` moves an existing key there. The public key stays "
        "in the data dir.",
    )
    checkpoint_events: int = Field(
        1000,
        ge=1,
        description="The daemon signs a checkpoint (a write-once anchor in the archive) after "
        "this many custody events ...",
    )
    checkpoint_seconds: float = Field(
        3600.0,
        ge=60,
        description="... or this long after the last one if any event happened since.",
    )
    pubkey_fingerprint: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{32}$",
        description="Fingerprint of the station public key noted at enrolment (`evidence-agent "
        "keys show`): verify trusts the key next to the ledger, or its archived copy, only "
        "if it has this fingerprint.",
    )
