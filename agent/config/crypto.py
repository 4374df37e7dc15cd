"""The `[crypto]` config section: encryption at rest of the copies the station keeps.

The station key-encryption key (KEK) never lies in the data dir: whoever takes a copy of the
data dir must not take the key with it (docs/security.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.config.base import Section

DEFAULT_KEY_FILE = Path("/etc/evidence-agent/keys/encryption.key")
CREDENTIAL_NAME = "evidence-agent-encryption-key"
# `keys encryption init --systemd-creds` seals the key here; install-systemd then loads it
# with LoadCredentialEncrypted= (agent.station.syscreds).
CREDSTORE_DIR = Path("/etc/evidence-agent/credstore.encrypted")


class CryptoConfig(Section):
    encrypt: Literal["auto", "required", "off"] = Field(
        "auto",
        description="Encrypt spool copies: `auto` when a station key exists (crypto.key_file or "
        f"the systemd credential `{CREDENTIAL_NAME}`), else plaintext with a check-config "
        "warning; `required` refuses to start without the key; `off` writes plaintext.",
    )
    key_file: Path | None = Field(
        None,
        description="The station key-encryption key, readable only by the service user and "
        f"outside station.data_dir. Default: $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME} when "
        f"systemd hands it over, else {DEFAULT_KEY_FILE}. Made by `keys encryption init`.",
    )
    recovery_public_key: Path | None = Field(
        None,
        description="PEM X25519 public key of the agency's offline recovery key: every data key "
        "is also wrapped for it, so `keys encryption recover` restores access when the "
        "station key is lost. Its private half never comes onto the station.",
    )
    suite: Literal["intl", "sm"] = Field(
        "intl",
        description="Algorithms of new copies: `intl` = AES-256-GCM envelopes and SHA-256; `sm` "
        "(国密) = SM4-GCM envelopes and an SM3 digest recorded next to SHA-256 for each "
        "recording. Copies of either suite stay readable whatever this is set to.",
    )
    encrypt_existing_bytes_per_second: int = Field(
        20_000_000,
        ge=0,
        description="With a station key, the daemon encrypts spool copies written in plaintext "
        "(before encryption was on) in the background at most this fast; 0 = never. Each "
        "plaintext copy is replaced only by an encrypted copy that verified.",
    )
