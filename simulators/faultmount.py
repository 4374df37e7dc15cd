"""Run a faultfs server (simulators/faultfs.py) in a child process and drive it.

The server runs as `evidence-agent simulate faultfs` in its own process, so a crash of the
filesystem can never take the test or the agent down with it; the test drives it through its
JSON control file and reads what it injected from its events file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def mounted_source(mountpoint: Path) -> str | None:
    """Source (fsname) of the topmost mount on `mountpoint`, None if nothing is mounted."""
    target = os.fsencode(os.path.abspath(mountpoint))
    found = None
    try:
        with open("/proc/self/mountinfo", "rb") as fh:
            for line in fh:
                left, _, right = line.partition(b" - ")
                if left.split(b" ")[4] == target:
                    found = os.fsdecode(right.split(b" ")[1])  # later lines are mounted on top
    except (OSError, IndexError):
        return None
    return found


def is_mounted(mountpoint: Path) -> bool:
    return mounted_source(mountpoint) is not None


def detach(mountpoint: Path, source: str | None = None) -> None:
    """Lazy unmount (what a yanked USB device amounts to); the server then exits.

    With `source`, only if the mount there is still that one: a late detach must never take
    down the next mount on the same path (a recorder docked again).
    """
    if source is not None and mounted_source(mountpoint) != source:
        return
    for cmd in (["fusermount3", "-u", "-z", str(mountpoint)], ["umount", "-l", str(mountpoint)]):
        try:
            if subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0:
                return
        except (OSError, subprocess.TimeoutExpired):
            continue
        if source is not None and mounted_source(mountpoint) != source:
            return


class FaultMount:
    """A faultfs server in a child process, mounted on `mountpoint` by start()."""

    def __init__(
        self,
        backing: Path,
        mountpoint: Path,
        kind: str = "recorder",
        workdir: Path | None = None,
        allow_erase: bool = False,
        fsname: str = "evagent-faultfs",
    ) -> None:
        self.backing, self.mountpoint, self.kind = backing, mountpoint, kind
        work = workdir or mountpoint.parent
        stem = f".{fsname}-{mountpoint.name}"
        self.control = work / f"{stem}.control.json"
        self.events_path = work / f"{stem}.events.jsonl"
        self.log_path = work / f"{stem}.log"
        self.allow_erase = allow_erase
        # One source name per server, so a detach can tell this mount from the next one.
        self.fsname = f"{fsname}.{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0, **faults: Any) -> FaultMount:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.set_faults(**faults)
        self.events_path.write_text("", encoding="utf-8")
        cmd = [
            sys.executable, "-m", "agent", "simulate", "faultfs", "--fs", self.kind,
            "--backing", str(self.backing), "--mount", str(self.mountpoint),
            "--control", str(self.control), "--events", str(self.events_path),
            "--fsname", self.fsname,
        ]  # fmt: skip
        if self.allow_erase:
            cmd.append("--allow-erase")
        root = Path(__file__).resolve().parent.parent
        # A file, not a pipe: nobody drains a pipe while the server runs for minutes.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=root, stderr=log)
        deadline = time.monotonic() + timeout
        # The mount may already be gone again (an unplug rule the agent tripped at once), so
        # the server's own "mounted" event counts as well as seeing the mount.
        while not (self.mounted or self.events("mounted")):
            if self.proc.poll() is not None:
                err = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"faultfs on {self.mountpoint} exited {self.proc.returncode}: {err}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"faultfs on {self.mountpoint} not mounted after {timeout} s")
            time.sleep(0.02)
        return self

    def set_faults(self, **faults: Any) -> None:
        """Replace the fault set (atomically: the server never sees a half-written file)."""
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(json.dumps(faults), encoding="utf-8")
        os.replace(tmp, self.control)

    def events(self, fault: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        evs = [json.loads(line) for line in lines if line.strip()]
        return [e for e in evs if fault is None or e["fault"] == fault]

    @property
    def mounted(self) -> bool:
        return mounted_source(self.mountpoint) == self.fsname

    def unplug(self, timeout: float = 15.0) -> None:
        """Yank the device now and wait until its mount is gone."""
        self.set_faults(unplug={"now": True})
        try:
            os.stat(self.mountpoint / ".")  # any operation trips the unplug
            os.listdir(self.mountpoint)
        except OSError:
            pass
        self.wait_unmounted(timeout)

    def wait_unmounted(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.mounted and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        """Unmount and end the server; safe to call twice or after an unplug."""
        if self.mounted:
            detach(self.mountpoint, self.fsname)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> FaultMount:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
