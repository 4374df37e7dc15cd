"""Which station public key `verify` trusts: pinned outside the data dir, or UNPINNED.

Order: `verify --pubkey FILE`, then `custody.pubkey_file`, then `custody.pubkey_fingerprint`
(the key next to the ledger, or its archived copy, with exactly that fingerprint). With none
of them the key in `<data_dir>/keys/` is used and the report says UNPINNED: whoever can
rewrite the ledger can replace that key too, so only the anchors outside the station hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from agent.actions.exportverify import load_pubkey
from agent.config.loader import AgentConfig
from agent.core.errors import AgentError
from agent.ledger import stationkey


@dataclass
class Trust:
    pub: Ed25519PublicKey | None = None
    source: str = ""
    pinned: bool = False
    problems: list[tuple[str, str]] = field(default_factory=list)  # (subject, message)

    @property
    def fingerprint(self) -> str | None:
        return stationkey.fingerprint(self.pub) if self.pub is not None else None


def resolve(
    cfg: AgentConfig, pubkey: Path | None, archived: Callable[[str], bytes | None]
) -> Trust:
    """`archived(fingerprint)` returns the archived PEM of that key, or None."""
    local = stationkey.load_public(cfg.keys_dir)
    file = pubkey or cfg.custody.pubkey_file
    if file is not None:
        trust = _from_file(file, "--pubkey" if pubkey else "custody.pubkey_file")
    elif cfg.custody.pubkey_fingerprint:
        retired = _retired(cfg.keys_dir, cfg.custody.pubkey_fingerprint)
        own = cfg.custody.signing_key_file  # retired keys lie next to the private key
        if retired is None and own is not None:
            retired = _retired(own.parent, cfg.custody.pubkey_fingerprint)
        # After `keys rotate` the pinned (enrolment) key is kept in keys/retired/.
        trust = _from_fingerprint(cfg.custody.pubkey_fingerprint, retired or local, archived)
    else:
        return Trust(local, f"{cfg.keys_dir / stationkey.PUB_FILE} (UNPINNED)", False)
    want = cfg.custody.pubkey_fingerprint
    if trust.pub is not None and want and trust.fingerprint != want:
        trust.problems.append(
            (
                str(file),
                f"pinned key {file} has fingerprint {trust.fingerprint}, but "
                f"custody.pubkey_fingerprint is {want}: fix one of them",
            )  # fmt: skip
        )
    return trust  # the key next to the ledger is compared after following hand-overs


def _retired(keys_dir: Path, fp: str) -> Ed25519PublicKey | None:
    """The public half of a key `keys rotate` retired (agent.ledger.handover)."""
    path = keys_dir / "retired" / (fp.replace(":", "-") + ".pem")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else None  # type: ignore[return-value]


def _fp(pub: Ed25519PublicKey) -> str:
    return stationkey.fingerprint(pub)


def _from_file(file: Path, how: str) -> Trust:
    try:
        return Trust(load_pubkey(file), f"{file} ({how})", True)
    except AgentError as exc:
        return Trust(None, f"{file} ({how})", True, [(str(file), f"{exc}; {how} names it")])


def _from_fingerprint(
    want: str, local: Ed25519PublicKey | None, archived: Callable[[str], bytes | None]
) -> Trust:
    source = f"custody.pubkey_fingerprint {want}"
    if local is not None and _fp(local) == want:
        return Trust(local, f"{source} (key next to the ledger)", True)
    try:
        pem = archived(want)
        pub = serialization.load_pem_public_key(pem) if pem else None
    except (AgentError, OSError, ValueError) as exc:
        pem, pub = None, None
        why = f"cannot read its archived copy: {exc}"
    else:
        why = "no archived copy either"
    if isinstance(pub, Ed25519PublicKey) and _fp(pub) == want:
        return Trust(pub, f"{source} (archived copy)", True)
    have = f"fingerprint {_fp(local)}" if local is not None else "none"
    return Trust(
        None, source, True,
        [("custody.pubkey_fingerprint",
          f"no station public key with the pinned fingerprint {want}: the key next to the "
          f"ledger has {have}, {why}; verify with --pubkey FILE from the fleet register")],
    )  # fmt: skip
