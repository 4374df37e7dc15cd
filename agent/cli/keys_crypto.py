"""`evidence-agent keys encryption init|show|rotate|recover`: the encryption key as commands.

`init` makes the station key-encryption key (crypto.key_file, outside the data dir) and, with
`--recovery-out DIR`, the agency's recovery key pair (the private half leaves the station).
`show` prints key ids and how many copies each wraps. `rotate` makes a new station key and
re-wraps every data key for it (footage is never re-encrypted). `recover`, on a machine whose
station key is lost, opens every copy with the recovery private key and wraps it for a new
station key. Each is a custody event (docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from agent.config.loader import AgentConfig
from agent.core.errors import EnvelopeKeyError


def cmd_encryption(args: argparse.Namespace, cfg: AgentConfig) -> int:
    action = args.action or "show"
    if action == "show":
        return _show(cfg, args.json)
    from agent.station.ownership import DaemonLock, require_owner

    if action == "init" and args.systemd_creds:
        from agent.cli.keys_seal import init_sealed

        return init_sealed(cfg, args)  # as root first (systemd-creds), then as the owner
    if action == "init":
        _prepare_key_dir(cfg)
    if action in ("rotate", "recover"):
        from agent.cli import keys_sealrot

        if keys_sealrot.wanted(cfg, args):  # the ring in the sealed credential (as root)
            return keys_sealrot.run(cfg, args, rewrap_rotate, rewrap_recover)
    require_owner(cfg.station.data_dir, f"keys encryption {action}")
    if action == "init":
        return _init(cfg, args)
    lock = DaemonLock(cfg.locks_dir, cfg.station.data_dir)
    lock.acquire()  # exits 75 naming the running daemon: it holds the key it seals with
    try:
        if action == "encrypt-existing":
            return _encrypt_existing(cfg)
        return _rotate(cfg) if action == "rotate" else _recover(cfg, args)
    finally:
        lock.release()


def _prepare_key_dir(cfg: AgentConfig) -> None:
    """As root: the key's directory, 0700, owned by the data dir's owner (who reads the key)."""
    from agent.station import kek

    parent = kek.key_path(cfg).parent
    if os.geteuid() != 0 or parent.exists():
        return
    parent.mkdir(parents=True, mode=0o700)
    st = cfg.station.data_dir.stat() if cfg.station.data_dir.exists() else None
    if st is not None:
        os.chown(parent, st.st_uid, st.st_gid)


def _ids(cfg: AgentConfig) -> dict[str, Any]:
    from agent.core import envelope
    from agent.station import kek, syscreds

    path = kek.key_path(cfg)
    ring = kek.load_ring(path) if path.exists() else []
    sealed = not ring and syscreds.sealed_present()
    if sealed:  # its ids as root (systemd-creds decrypt in memory); else only that it exists
        path, ring = syscreds.credential_path(), kek.sealed_keys() or []
    pub = kek.load_recovery_public(cfg)
    return {
        "key_file": str(path),
        "sealed": sealed,
        "key_ids": [envelope.kek_id(k).hex() for k in ring],
        "recovery_public_key": str(cfg.crypto.recovery_public_key or "") or None,
        "recovery_key_id": envelope.recovery_id(pub).hex() if pub is not None else None,
        "encrypt": cfg.crypto.encrypt,
    }


def _show(cfg: AgentConfig, as_json: bool) -> int:
    import sqlite3

    doc = _ids(cfg)
    counts: dict[str, int] = {}
    if cfg.ledger_path.exists():
        conn = sqlite3.connect(f"file:{cfg.ledger_path}?mode=ro", uri=True)
        try:
            for kid, n in conn.execute(
                "SELECT spool_key_id, COUNT(*) FROM recordings WHERE spool_path IS NOT NULL"
                " AND spool_removed_at IS NULL GROUP BY spool_key_id"
            ):
                counts[kid or "plaintext"] = n
        finally:
            conn.close()
    doc["spool_copies"] = counts
    if as_json:
        print(json.dumps(doc, indent=2))
        return 0
    current = doc["key_ids"][0] if doc["key_ids"] else None
    print(f"station encryption key {current or 'NONE'} in {doc['key_file']}")
    for old in doc["key_ids"][1:]:
        print(f"  older key {old} (a rotation is unfinished: run `keys encryption rotate`)")
    print(f"recovery key {doc['recovery_key_id'] or 'NOT SET (crypto.recovery_public_key)'}")
    for kid, n in sorted(counts.items()):
        print(f"  {n} spool copies {'in plaintext' if kid == 'plaintext' else 'under ' + kid}")
    return 0


def _init(cfg: AgentConfig, args: argparse.Namespace) -> int:
    from agent.core import envelope
    from agent.station import kek
    from agent.station.context import Context

    path = kek.key_path(cfg)
    if kek.inside_data_dir(cfg, path):
        raise EnvelopeKeyError(
            f"crypto.key_file {path} lies inside station.data_dir; choose a path outside it"
        )
    made = not path.exists()
    from agent.station import syscreds

    if made and syscreds.sealed_present():
        raise EnvelopeKeyError(
            f"the station key is sealed in {syscreds.credential_path()} (keys encryption init "
            "--systemd-creds): a new key file would not open the existing copies; nothing made"
        )
    if made:
        kek.write_ring(path, [os.urandom(32)])
    if args.recovery_out:
        priv, pub = kek.new_recovery_pair(Path(args.recovery_out))
        print(f"recovery key pair: {pub} (set crypto.recovery_public_key to it) and {priv}")
        print(f"take {priv} OFF this station now and keep it offline (docs/security.md)")
    kid = envelope.kek_id(kek.load_ring(path)[0]).hex()
    if made:
        ctx = Context(cfg)
        with ctx.ledger.tx() as conn:
            from agent.ledger import custody

            custody.append(conn, "crypto.key_created", {"key": kid, "file": str(path)})
    print(f"station encryption key {kid} {'made' if made else 'already'} in {path}")
    print("back it up offline with the recovery key; never into the data dir")
    return 0


def _rotate(cfg: AgentConfig) -> int:
    from agent.station import kek

    path = kek.key_path(cfg)
    ring = kek.load_ring(path)
    if len(ring) == 1:  # a new key first, the old one kept until every copy is re-wrapped
        ring = [os.urandom(32), *ring]
        kek.write_ring(path, ring)
    code = rewrap_rotate(cfg, ring, path)
    if code == 0:
        kek.write_ring(path, [ring[0]])  # every copy opens with the new key: drop the old
    return code


def rewrap_rotate(cfg: AgentConfig, ring: list[bytes], path: Path) -> int:
    """Re-wrap every copy for ring[0] (the older keys open them); 0 when none failed."""
    from agent.actions import rekey
    from agent.core import envelope
    from agent.station import kek
    from agent.station.context import Context

    ctx = Context(cfg)
    to = envelope.Recipients(ring[0], kek.load_recovery_public(cfg))
    result = rekey.rewrap_all(ctx, envelope.Keyring.of(*ring), to)
    slots = _archived(ctx, envelope.Keyring.of(*ring), to, result)
    new, old = envelope.kek_id(ring[0]).hex(), [envelope.kek_id(k).hex() for k in ring[1:]]
    rekey.commit(ctx, result, "crypto.key_rotated", {"key": new, "old": old}, "agent", slots)
    return _report(result, path, f"rotated to {new}")


def _recover(cfg: AgentConfig, args: argparse.Namespace) -> int:
    from agent.station import kek

    if not args.recovery_key:
        raise EnvelopeKeyError("keys encryption recover needs --recovery-key FILE")
    recovery = kek.load_recovery_private(Path(args.recovery_key))
    path = kek.key_path(cfg)
    ring = kek.load_ring(path) if path.exists() else []
    if not ring:
        ring = [os.urandom(32)]
        kek.write_ring(path, ring)
    code = rewrap_recover(cfg, ring, recovery, path)
    if code == 0:
        kek.write_ring(path, [ring[0]])
    return code


def rewrap_recover(cfg: AgentConfig, ring: list[bytes], recovery: Any, path: Path) -> int:
    """Open every copy with the ring or the recovery key, wrap it for ring[0]; 0 when done."""
    from agent.actions import rekey
    from agent.core import envelope
    from agent.station.context import Context

    ctx = Context(cfg)
    to = envelope.Recipients(ring[0], recovery.public_key())
    result = rekey.rewrap_all(ctx, envelope.Keyring.of(*ring, recovery=recovery), to)
    slots = _archived(ctx, envelope.Keyring.of(*ring, recovery=recovery), to, result)
    kid = envelope.kek_id(ring[0]).hex()
    payload = {"key": kid, "recovery_key": envelope.recovery_id(recovery.public_key()).hex()}
    rekey.commit(ctx, result, "crypto.recovered", payload, "agent", slots)
    return _report(result, path, f"recovered under {kid}")


def _archived(ctx: Any, opener: Any, to: Any, result: Any) -> dict[str, str]:
    """New slots for the archive.encryption = "client" objects in S3 (they stay as uploaded)."""
    from agent.archive.s3 import rekey as s3rekey

    if not s3rekey.client_objects(ctx):
        return {}
    from agent.archive.stores import open_store

    slots, failed = s3rekey.rewrap_archived(ctx, open_store(ctx), opener, to)
    result.failed += failed
    result.archive_objects += len(slots)
    return slots


def _encrypt_existing(cfg: AgentConfig) -> int:
    from agent.ingest import sealold
    from agent.station.context import Context

    ctx = Context(cfg)
    if ctx.seal is None:
        raise EnvelopeKeyError(
            "no station encryption key (crypto.key_file): run `keys encryption init` first"
        )
    done, left = sealold.run_all(ctx)
    for rid in left:
        print(f"LEFT {rid}: not encrypted (see the log; `evidence-agent verify` checks it)")
    print(f"{done} plaintext spool copies encrypted, {len(left)} left as they are")
    return 1 if left else 0


def _report(result: Any, path: Path, what: str) -> int:
    for rid, why in result.failed:
        print(f"FAIL {rid}: {why}")
    print(
        f"{what}: {len(result.rewrapped)} spool copies and {result.archive_objects} archive "
        f"objects re-wrapped, {len(result.plaintext)} plaintext copies left as they are"
    )
    if result.failed:
        print(f"older keys stay in {path} until every copy is re-wrapped; run it again")
    return 1 if result.failed else 0


def add_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "action",
        nargs="?",
        choices=["init", "show", "rotate", "recover", "encrypt-existing"],
        help="encryption: init, show (default), rotate, recover, encrypt-existing",
    )
    sp.add_argument("--recovery-out", metavar="DIR", help="encryption init: make a recovery pair")
    sp.add_argument("--recovery-key", metavar="FILE", help="encryption recover: private key")
    sp.add_argument(
        "--systemd-creds",
        action="store_true",
        help="encryption init: seal the station key with systemd-creds (TPM2 where present, "
        "else the host key) into the credstore and remove any plaintext key file (as root); "
        "recover: seal the new key instead of writing a key file (rotate and recover use the "
        "sealed key by themselves when there is no key file)",
    )
    sp.add_argument(
        "--credstore",
        metavar="DIR",
        help="encryption init --systemd-creds, rotate, recover: where the sealed key is "
        "(default /etc/evidence-agent/credstore.encrypted)",
    )
