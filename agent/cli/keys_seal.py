"""`keys encryption init --systemd-creds`: the station key sealed with systemd-creds, off the disk.

Run as root. The key (a new one, or the one in crypto.key_file / the default key file, which
is then removed) goes to `systemd-creds encrypt --with-key=auto` on stdin and lands sealed in
`/etc/evidence-agent/credstore.encrypted/evidence-agent-encryption-key` (`--credstore DIR`
elsewhere). Before any key file is removed the credential is decrypted back and must hold the
same keys. `install-systemd` then writes `LoadCredentialEncrypted=` into the unit, and the
daemon reads the key from $CREDENTIALS_DIRECTORY (agent.station.kek). A custody event records
it: `crypto.key_created` for a new key, `crypto.key_sealed` for an existing one.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.core.errors import EnvelopeKeyError


def init_sealed(cfg: AgentConfig, args: argparse.Namespace) -> int:
    from agent.core import envelope
    from agent.core.safefs import fsync_dir
    from agent.station import kek, syscreds

    if os.geteuid() != 0:
        raise EnvelopeKeyError(
            "keys encryption init --systemd-creds must run as root (sudo): systemd-creds seals "
            "with root's host key and the TPM2"
        )
    dest = syscreds.credential_path(Path(args.credstore) if args.credstore else None)
    source = kek.key_path(cfg, environ={})  # a key file on disk, never a loaded credential
    has_file = os.path.lexists(source)
    ring = kek.load_ring(source) if has_file else None
    changed = has_file or not dest.exists()
    if dest.exists():
        sealed = kek.parse_ring(syscreds.unseal(dest).decode("ascii"), dest)
        if ring is not None and ring != sealed:
            raise EnvelopeKeyError(
                f"{dest} already seals another station key than {source}: keep the one the "
                "copies are wrapped for (`keys encryption show`), move the other away, run again"
            )
        ring, made = sealed, False
    else:
        made = ring is None
        ring = ring or [os.urandom(32)]
        syscreds.seal(kek.ring_text(ring).encode("ascii"), dest)
        if kek.parse_ring(syscreds.unseal(dest).decode("ascii"), dest) != ring:
            raise EnvelopeKeyError(f"{dest} does not decrypt to the key just sealed; {source} kept")
    if has_file:
        source.unlink()  # verified above: the credential holds exactly these keys
        fsync_dir(source.parent)
    if args.recovery_out:
        priv, pub = kek.new_recovery_pair(Path(args.recovery_out))
        print(f"recovery key pair: {pub} (set crypto.recovery_public_key to it) and {priv}")
        print(f"take {priv} OFF this station now and keep it offline (docs/security.md)")
    kid = envelope.kek_id(ring[0]).hex()
    if changed:  # a run that found the key sealed already and no key file records nothing
        _record(cfg, made, kid, dest, source if has_file else None)
    print(f"station encryption key {kid} {'made and ' if made else ''}sealed in {dest}")
    if has_file:
        print(f"removed the plaintext key file {source}")
    if cfg.crypto.key_file is not None:
        print("remove crypto.key_file from the config: the daemon reads the credential")
    print("next: evidence-agent install-systemd (adds LoadCredentialEncrypted=), then restart")
    return 0


def _record(cfg: AgentConfig, made: bool, kid: str, dest: Path, removed: Path | None) -> None:
    from agent.ledger import custody
    from agent.station.context import Context
    from agent.station.ownership import require_owner

    require_owner(cfg.station.data_dir, "keys encryption init --systemd-creds")
    ctx = Context(cfg)
    payload = {"key": kid, "credential": str(dest), "with_key": "auto",
               "removed_key_file": str(removed) if removed else None}  # fmt: skip
    with ctx.ledger.tx() as conn:
        custody.append(conn, "crypto.key_created" if made else "crypto.key_sealed", payload)
    ctx.close()
