"""Where the service writes, from the config: the unit's ReadWritePaths.

Under `ProtectSystem=strict` the whole file system is read-only for the agent except the paths
listed in `ReadWritePaths=`. Every writable place the config names must be there, or "spool on
the second disk" fails with EROFS at the first copy: the data dir, `ingest.spool_dir`, a
`file://` archive, `interview.capture_dir`, and every mount root (erasing released
recordings). Paths the unit's other sandboxing hides are warned about: `ProtectHome=yes`
makes /home, /root and /run/user inaccessible, and `PrivateTmp=yes` gives the service its own
empty /tmp and /var/tmp, so files written there are not where the admin looks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

HIDDEN = {
    "ProtectHome=yes": (Path("/home"), Path("/root"), Path("/run/user")),
    "PrivateTmp=yes": (Path("/tmp"), Path("/var/tmp")),
}


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _path(value: Any, base: Path) -> Path | None:
    # Relative paths in the config are relative to the file, as agent.config.loader treats them.
    return base / value if isinstance(value, str) and value else None


def file_archive_dir(url: Any, base: Path) -> Path | None:
    """The directory of a `file://` archive URL (None for s3:// or no URL)."""
    if not isinstance(url, str) or not url.startswith("file://"):
        return None
    return _path(unquote(urlparse(url).path), base)


def configured_paths(data: dict[str, Any], base: Path) -> dict[str, Path]:
    """Config key -> writable path, for the keys that name one besides the data dir."""
    found = {
        "ingest.spool_dir": _path(_section(data, "ingest").get("spool_dir"), base),
        "archive.url": file_archive_dir(_section(data, "archive").get("url"), base),
        "interview.capture_dir": _path(_section(data, "interview").get("capture_dir"), base),
    }
    return {key: path for key, path in found.items() if path is not None}


def writable_paths(data_dir: Path, mount_roots: list[Path], extra: dict[str, Path]) -> list[Path]:
    """Every path the service writes, without repeats or paths inside another listed one."""
    paths = [Path(data_dir), *map(Path, mount_roots), *extra.values()]
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(p != q and p.is_relative_to(q) for q in unique)]


def hidden_warnings(named: dict[str, Path]) -> list[str]:
    """One warning per configured path the unit's sandboxing hides from the service."""
    out = []
    for key, path in named.items():
        for setting, roots in HIDDEN.items():
            if any(path == r or path.is_relative_to(r) for r in roots):
                out.append(
                    f"{key} = {path} is hidden from the service by {setting} in the unit: "
                    "move it (e.g. under /var/lib or /srv) or relax that setting in a drop-in "
                    "(systemctl edit evidence-agent)"
                )
    return out
