"""The local directory archive (`file:///...`): write-once, hash-named, read-only files.

The embedded default. It is off-station only when `archive.off_station = true` (a NAS mount),
and only then may it open the wipe gate.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from agent import crashpoint
from agent.copier import hash_file
from agent.errors import IntegrityError
from agent.safefs import fsync_dir


class LocalArchive:
    scheme = "file"

    def __init__(self, url: str, off_station: bool) -> None:
        parsed = urlparse(url)
        self.root = Path(parsed.path)
        self.off_station = off_station

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def ref(self, sha256: str) -> str:
        return f"file://{self.path_for(sha256)}"

    def put(self, src: Path, sha256: str, size: int) -> str:
        """Store `src` under its hash; idempotent; verified by re-reading from disk."""
        dest = self.path_for(sha256)
        if dest.exists():
            self.check(sha256, size)
            return self.ref(sha256)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{sha256}.partial"
        # A partial left by a crash is already 0444: reopening it for writing would fail for
        # the unprivileged service user and wedge the archive, so start from a fresh file.
        tmp.unlink(missing_ok=True)
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            while data := fin.read(4 << 20):
                fout.write(data)
            fout.flush()
            os.fsync(fout.fileno())
        os.chmod(tmp, 0o444)
        crashpoint.hit("archive.before_rename")
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
        self.check(sha256, size)
        return self.ref(sha256)

    def check(self, sha256: str, size: int) -> None:
        dest = self.path_for(sha256)
        if dest.stat().st_size != size or hash_file(dest, drop_cache_first=True) != sha256:
            raise IntegrityError(f"archived object {dest} does not match SHA-256 {sha256}")

    def open_for_read(self, sha256: str) -> Path:
        return self.path_for(sha256)
