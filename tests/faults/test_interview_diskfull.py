"""Segment write failure: the capture directory fills up mid-session (a real tmpfs), the gap is
reported as write_failed with the reason, and recording resumes once space is back."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.interview import commands
from agent.interview import sessions as ses
from fixtures.interview import RunningDaemon
from fixtures.station import Station
from toolcheck import unavailable

MOUNT_SOURCE = "evidence-test-tmpfs"


def _sweep_leftovers() -> None:
    """Unmount tmpfs mounts of ours that a killed test run left (owner pid no longer alive);
    a concurrent run's mounts have a live owner and are left alone."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[1:2] != [MOUNT_SOURCE]:
            continue
        mnt = Path(left.split()[4].replace("\\040", " "))
        try:
            owner = int((mnt.parent / "small-disk.pid").read_text())
            os.kill(owner, 0)
            continue
        except (OSError, ValueError):
            subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    _sweep_leftovers()
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    (tmp_path / "small-disk.pid").write_text(str(os.getpid()))
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", MOUNT_SOURCE, str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> None:
    with open(path, "wb") as f:
        block = b"\0" * (64 << 10)
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_disk_full_is_a_write_failed_gap_and_recording_resumes(
    make_interview_station: Callable[..., Station],
    running_daemon: Callable[[Station], RunningDaemon],
    small_disk: Path,
) -> None:
    st = make_interview_station(segment_seconds=2, capture_dir=str(small_disk / "interview"))
    d = running_daemon(st)
    res = commands.start(d.ctx, {"source": "test"})
    assert res["ok"], res
    sid = str(res["session"])
    time.sleep(2.5)
    filler = small_disk / "filler"
    _fill(filler)
    gap = d.wait(
        lambda: d.ctx.ledger.one(
            "SELECT * FROM interview_gaps WHERE session_id=? AND kind='write_failed'", (sid,)
        ),
        20,
    )
    assert "No space left on device" in gap["detail"]
    assert d.daemon.interview is not None and not d.daemon.interview.lamp_wanted
    filler.unlink()
    closed = d.wait(
        lambda: d.ctx.ledger.one(
            "SELECT * FROM interview_gaps WHERE id=? AND end IS NOT NULL", (gap["id"],)
        ),
        20,
    )
    time.sleep(2.5)
    assert commands.stop(d.ctx, {"source": "test"})["ok"]
    end = ses.epoch(closed["end"]) or 0
    later = d.ctx.ledger.query(
        "SELECT * FROM interview_segments WHERE session_id=? AND start >= ?",
        (sid, ses.iso_at(end - 0.01)),
    )
    assert later, "recording did not resume after space came back"
    assert d.session(sid)["state"] == "closed"
