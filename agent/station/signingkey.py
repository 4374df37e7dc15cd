"""Where the station's Ed25519 custody signing key lives, and moving it out of the data dir.

By default the private key is `<data_dir>/keys/station.ed25519.pem` (agent.ledger.stationkey):
whoever copies the data dir can then sign a rewritten custody history. `custody.signing_key_file`
puts it elsewhere (readable only by the service user, like `crypto.key_file`); the public key
stays next to the ledger, so a pinned key or fingerprint stays valid.

`move` (`evidence-agent keys move-signing`, daemon stopped) moves an existing key from the data
dir to `custody.signing_key_file`: the same key (same fingerprint), written 0600 with
O_EXCL, keys retired by `keys rotate` with it, one custody event `key.signing_moved` committed,
and only then the copies in the data dir removed. Re-running it after it finished changes
nothing. `warnings` is check-config's word on a signing key left inside the data dir.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config.loader import AgentConfig
from agent.core.errors import StationKeyError
from agent.core.safefs import fsync_dir
from agent.ledger import custody, handover, stationkey
from agent.ledger.db import Ledger
from agent.station import kek, syscreds

EVENT = "key.signing_moved"
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def path(cfg: AgentConfig) -> Path:
    """The private signing key's file (custody.signing_key_file, else the data dir default)."""
    return stationkey.private_path(cfg.keys_dir, cfg.custody.signing_key_file)


def warnings(cfg: AgentConfig) -> list[str]:
    """check-config: the signing key inside the data dir while encryption at rest is on."""
    encrypting = cfg.crypto.encrypt != "off" and (
        kek.key_path(cfg).exists() or syscreds.sealed_present()
    )
    if not encrypting or not kek.inside_data_dir(cfg, path(cfg)):
        return []
    return [
        f"the custody signing key {path(cfg)} lies inside station.data_dir while encryption at "
        "rest is on: a copy of the data dir could sign a rewritten custody history; set "
        "custody.signing_key_file outside it (e.g. /etc/evidence-agent/keys/signing.ed25519.pem)"
        " and run `evidence-agent keys move-signing` (docs/security.md)"
    ]


@dataclass
class Moved:
    source: Path
    target: Path
    fingerprint: str
    moved: bool  # False: already there, nothing changed
    retired: list[str] = field(default_factory=list)


def move(cfg: AgentConfig, ledger: Ledger) -> Moved:
    """Move the signing key from the data dir to custody.signing_key_file (see the module
    docstring). The caller holds the daemon lock."""
    src, dst = cfg.keys_dir / stationkey.KEY_FILE, _target(cfg)
    pending = [p / handover.NEXT_FILE for p in (src.parent, dst.parent)]
    if any(os.path.lexists(p) for p in pending):
        raise StationKeyError(
            "a key rotation is under way (next.ed25519.pem exists): run `evidence-agent keys "
            "show` or start the agent once to finish it, then move the key"
        )
    old, new = _load(src), _load(dst)
    if old is None:
        if new is None:
            raise StationKeyError(
                f"no signing key at {src} or at custody.signing_key_file {dst}: restore it "
                "from the station's backup (or run `evidence-agent keys init` on a new station)"
            )
        return Moved(src, dst, stationkey.fingerprint(new.public_key()), False)
    fp = _check_same(cfg, src, dst, old, new)
    if new is None:
        _write_key(dst, src.read_bytes())
    retired = _copy_retired(src.parent / "retired", dst.parent / "retired")
    with ledger.tx() as conn:
        payload = {"from": str(src), "to": str(dst), "fingerprint": fp, "retired": retired}
        custody.append(conn, EVENT, payload, actor="keys move-signing")
    for name in retired:
        os.unlink(src.parent / "retired" / name)
    os.unlink(src)
    fsync_dir(src.parent)
    return Moved(src, dst, fp, True, retired)


def _target(cfg: AgentConfig) -> Path:
    dst = cfg.custody.signing_key_file
    if dst is None:
        raise StationKeyError(
            "custody.signing_key_file is not set: set it to a file outside station.data_dir "
            "(e.g. /etc/evidence-agent/keys/signing.ed25519.pem, in a folder only the service "
            "user reads), then run `evidence-agent keys move-signing` again"
        )
    if kek.inside_data_dir(cfg, dst):
        raise StationKeyError(
            f"custody.signing_key_file {dst} lies inside station.data_dir "
            f"{cfg.station.data_dir}: choose a file outside it"
        )
    return dst


def _check_same(
    cfg: AgentConfig, src: Path, dst: Path, old: Ed25519PrivateKey, new: Ed25519PrivateKey | None
) -> str:
    fp = stationkey.fingerprint(old.public_key())
    if new is not None and stationkey.fingerprint(new.public_key()) != fp:
        raise StationKeyError(
            f"{dst} holds a different key than {src} ({fp}); nothing was moved: keep the one "
            "the ledger's checkpoints were signed with (`evidence-agent keys show`) and move "
            "the other away"
        )
    pub = stationkey.load_public(cfg.keys_dir)
    if pub is not None and stationkey.fingerprint(pub) != fp:
        raise StationKeyError(
            f"{src} ({fp}) is not the key of {cfg.keys_dir / stationkey.PUB_FILE} "
            f"({stationkey.fingerprint(pub)}); nothing was moved: restore keys/ from backup"
        )
    return fp


def _load(file: Path) -> Ed25519PrivateKey | None:
    try:
        return stationkey.read_private(file)
    except FileNotFoundError:
        return None


def _write_key(dst: Path, pem: bytes) -> None:
    """0600 from creation, never through a planted file or symlink, never over a key."""
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = dst.parent / f".{dst.name}.{secrets.token_hex(8)}.tmp"
    try:
        with os.fdopen(os.open(tmp, _NEW, 0o600), "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dst.parent)


def _copy_retired(src: Path, dst: Path) -> list[str]:
    """Keys `keys rotate` retired: linked or copied next to the moved key (kept, never lost)."""
    if not src.is_dir():
        return []
    names = sorted(p.name for p in src.iterdir() if p.is_file() and not p.is_symlink())
    for name in names:
        if not (dst / name).exists():
            _write_key(dst / name, (src / name).read_bytes())
    return names
