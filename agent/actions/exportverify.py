"""`evidence-agent verify-export DIR --pubkey FILE`: check an export with no station at all.

Needs only the export directory and the station's public key (obtained out of band, e.g. from
the fleet register): every `manifest-*.json` must carry a valid ed25519 signature by that key
over its canonical body, every recording it lists must be a regular file (not a symlink) with
the SHA-256 and size the manifest states, and a `SHA256SUMS` file, when present, must agree
with the files. Manifests from releases without `SHA256SUMS` verify the same way.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.core import rehash
from agent.core.errors import AgentError
from agent.ledger.custody import canonical
from agent.ledger.stationkey import fingerprint


@dataclass
class ExportCheck:
    manifests: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.manifests > 0 and not self.problems


def load_pubkey(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise AgentError(f"{path}: not a readable PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AgentError(f"{path}: not an ed25519 public key (the station key is ed25519)")
    return key


def _file_hash(folder: Path, name: str) -> tuple[str, int] | str:
    """(sha256, size) of a regular file named in the export, else why not."""
    if not name or "/" in name or name.startswith("."):
        return f"refusing file name {name!r} from the manifest"
    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        return f"{name}: {exc.strerror}"
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return f"{name}: not a regular file"
        return rehash.sha256_stream(f)


def _check_manifest(folder: Path, path: Path, pub: Ed25519PublicKey, out: ExportCheck) -> None:
    try:
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        signature = bytes.fromhex(str(body.pop("signature")))
    except (OSError, ValueError, KeyError) as exc:
        out.problems.append(f"{path.name}: unreadable or unsigned manifest ({exc})")
        return
    if body.get("key_fingerprint") != fingerprint(pub):
        out.problems.append(f"{path.name}: signed by {body.get('key_fingerprint')}, not this key")
    try:
        pub.verify(signature, canonical(body).encode("utf-8"))
    except InvalidSignature:
        out.problems.append(f"{path.name}: signature does not verify (manifest altered)")
    out.manifests += 1
    for item in body.get("recordings") or []:
        got = _file_hash(folder, str(item.get("file", "")))
        if isinstance(got, str):
            out.problems.append(f"recording {item.get('id')}: {got}")
        elif got != (item.get("sha256"), item.get("size")):
            out.problems.append(
                f"recording {item.get('id')}: {item.get('file')} has SHA-256 {got[0]} and "
                f"{got[1]} bytes, the manifest says {item.get('sha256')} / {item.get('size')}"
            )
        else:
            out.files_checked += 1


def _check_sums(folder: Path, sums: Path, out: ExportCheck) -> None:
    for n, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), 1):
        want, sep, name = line.partition("  ")
        if not sep:
            out.problems.append(f"{sums.name} line {n}: not '<sha256>  <name>'")
            continue
        got = _file_hash(folder, name)
        if isinstance(got, str) or got[0] != want:
            out.problems.append(f"{sums.name} line {n}: {name} does not match")


def verify_export(folder: Path, pub: Ed25519PublicKey) -> ExportCheck:
    out = ExportCheck()
    manifests = sorted(folder.glob("manifest-*.json"))
    if not manifests:
        out.problems.append(f"{folder}: no manifest-*.json (not an evidence-agent export)")
    for path in manifests:
        _check_manifest(folder, path, pub, out)
    for sums in sorted(folder.glob("SHA256SUMS*")):
        _check_sums(folder, sums, out)
    return out
