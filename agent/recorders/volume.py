"""What is on a recorder volume: evidence files, ignored files, refused entries, and who it is.

The scan never follows symlinks and never opens anything but regular files; every entry that
is not evidence is listed with a reason (ignored / refused) so nothing disappears silently.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.core.safefs import display
from agent.recorders.naming import parse_name
from drivers.base import DeviceIdentity

logger = logging.getLogger(__name__)

DEVINFO_NAMES = (b"DEVINFO.TXT", b"devinfo.txt", b"DEVICE.TXT")
LAYOUT_MARKERS = ("DCIM", "RECORD", "VIDEO", "DEVINFO.TXT", "devinfo.txt", "DEVICE.TXT")
MAX_DEPTH = 24
MAX_DEVINFO_BYTES = 64 * 1024


@dataclass(frozen=True)
class SourceFile:
    rel: bytes  # exact relative path bytes
    size: int
    mtime_ns: int

    @property
    def display(self) -> str:
        return display(self.rel)

    @property
    def name(self) -> str:
        return display(self.rel.rsplit(b"/", 1)[-1])


@dataclass
class Issue:
    path: str
    kind: str  # ignored | refused | error
    reason: str


@dataclass
class ScanResult:
    root: Path
    files: list[SourceFile] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


def _ext(name: bytes) -> str:
    base = name.rsplit(b"/", 1)[-1]
    if b"." not in base:
        return ""
    return base.rsplit(b".", 1)[-1].decode("ascii", errors="replace").lower()


def scan(root: Path, cfg: AgentConfig) -> ScanResult:
    """List evidence files under `root`; everything else becomes an Issue with a reason."""
    result = ScanResult(root)
    exts = set(cfg.ingest.extensions)
    stack: list[tuple[bytes, int]] = [(b"", 0)]
    root_b = os.fsencode(root)
    while stack:
        rel_dir, depth = stack.pop()
        full = os.path.join(root_b, rel_dir) if rel_dir else root_b
        try:
            entries = sorted(os.scandir(full), key=lambda e: e.name)
        except OSError as exc:
            result.issues.append(Issue(display(rel_dir) or "/", "error", f"cannot list: {exc}"))
            continue
        for entry in entries:
            rel = entry.name if not rel_dir else rel_dir + b"/" + entry.name
            _classify(entry, rel, depth, exts, cfg, result, stack)
    return result


def _classify(
    entry: os.DirEntry[bytes],
    rel: bytes,
    depth: int,
    exts: set[str],
    cfg: AgentConfig,
    result: ScanResult,
    stack: list[tuple[bytes, int]],
) -> None:
    shown = display(rel)
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError as exc:
        result.issues.append(Issue(shown, "error", f"cannot stat: {exc}"))
        return
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        result.issues.append(Issue(shown, "refused", "symlink: never followed"))
    elif stat.S_ISDIR(mode):
        if depth + 1 > MAX_DEPTH:
            result.issues.append(Issue(shown, "refused", f"nested deeper than {MAX_DEPTH}"))
        else:
            stack.append((rel, depth + 1))
    elif not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "device node or socket"
        result.issues.append(Issue(shown, "refused", f"{kind}: not a regular file"))
    elif _ext(rel) not in exts:
        result.issues.append(Issue(shown, "ignored", "not an evidence file type"))
    elif st.st_size > cfg.ingest.max_file_bytes:
        result.issues.append(
            Issue(
                shown,
                "refused",
                f"{st.st_size} bytes exceeds ingest.max_file_bytes ({cfg.ingest.max_file_bytes})",
            )
        )
    else:
        result.files.append(SourceFile(rel, st.st_size, st.st_mtime_ns))


def looks_like_volume(path: Path) -> bool:
    """A directory under a mount root holding a recognised recorder layout."""
    return any((path / m).exists() for m in LAYOUT_MARKERS)


def read_devinfo(root: Path) -> dict[str, str] | None:
    """Parse the recorder's key=value device info file (UTF-8 or GBK); None if absent/garbage."""
    for name in DEVINFO_NAMES:
        path = os.path.join(os.fsencode(root), name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_DEVINFO_BYTES:
            logger.warning(
                "volume %s: device info file %s refused (not a small regular file)",
                root,
                display(name),
            )
            return None
        with open(path, "rb") as fh:
            raw = fh.read(MAX_DEVINFO_BYTES)
        for enc in ("utf-8-sig", "gb18030"):
            try:
                text = raw.decode(enc)
                break
            except UnicodeDecodeError:
                continue
        else:
            return None
        info = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().isidentifier():
                info[key.strip().lower()] = value.strip()
        return info or None
    return None


def identify_volume(
    root: str | Path,
    cfg: AgentConfig | None = None,
    scan_result: ScanResult | None = None,
    driver_identity: DeviceIdentity | None = None,
) -> DeviceIdentity:
    """The recorder behind a volume: driver's word, device info file, file names, label."""
    root = Path(root)
    if driver_identity is not None:
        return driver_identity
    info = read_devinfo(root)
    if info and _safe_serial(info.get("serial")):
        return DeviceIdentity(
            vendor=_safe_serial(info.get("vendor")) or "generic",
            serial=info["serial"],
            source="devinfo",
            officer_id=info.get("officer_id") or None,
            officer_name=info.get("officer_name") or None,
            unit_id=info.get("unit_id") or None,
            unit_name=info.get("unit_name") or None,
            model=info.get("model") or None,
        )
    if cfg is not None and scan_result is not None:
        for f in scan_result.files:
            parsed = parse_name(f.name, cfg.ingest.naming_patterns, cfg.station.timezone)
            if parsed and parsed.serial:
                return DeviceIdentity(
                    "generic", parsed.serial, "filename", officer_id=parsed.officer
                )
    return DeviceIdentity("generic", root.name, "label")


def _safe_serial(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if value and all(c.isalnum() or c in "-_." for c in value) else None
