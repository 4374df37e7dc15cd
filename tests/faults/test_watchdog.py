"""The systemd watchdog is honest: pings stop when one supervised loop hangs, and a supervisor
speaking the sd_notify protocol restarts the agent; a slow but progressing copy keeps them going.

The supervisor is this test: it binds the NOTIFY_SOCKET datagram socket, starts
`evidence-agent run` with NOTIFY_SOCKET and WATCHDOG_USEC set, and like systemd kills and
restarts the agent when no WATCHDOG=1 arrives within WATCHDOG_USEC.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from faults.harness import Recorder
from fixtures.station import ROOT, Station, ledger_rows

WATCHDOG_USEC = 2_000_000


@dataclass
class Supervisor:
    """A minimal systemd: one notify socket, one service, the watchdog rule."""

    station: Station
    sock_path: Path
    messages: list[tuple[float, str]] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.settimeout(0.1)

    def start(self, **env: str) -> None:
        full = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.sock_path),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
            **env,
        }
        full.pop("EVIDENCE_AGENT_CONFIG", None)
        cmd = [sys.executable, "-m", "agent", "--config", str(self.station.config_path), "run"]
        self.proc = subprocess.Popen(
            cmd, env=full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            for line in data.decode().splitlines():
                self.messages.append((time.monotonic(), line))

    def since(self, t: float, prefix: str) -> list[tuple[float, str]]:
        return [(at, m) for at, m in self.messages if at >= t and m.startswith(prefix)]

    def watch(self, seconds: float) -> float | None:
        """Run the watchdog rule for `seconds`; the time it fired (killed the agent), or None."""
        assert self.proc is not None
        end = time.monotonic() + seconds
        last = time.monotonic()
        while time.monotonic() < end:
            self.pump(0.2)
            pings = self.since(last, "WATCHDOG=1")
            if pings:
                last = pings[-1][0]
            if time.monotonic() - last > WATCHDOG_USEC / 1e6:
                self.proc.send_signal(signal.SIGABRT)  # what systemd sends on a timeout
                self.proc.wait(10)
                return time.monotonic()
        return None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()


def _wait_ready(sup: Supervisor, t0: float, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not sup.since(t0, "READY=1") and time.monotonic() < end:
        sup.pump(0.2)
    assert sup.since(t0, "READY=1"), "the agent never sent READY=1"


def test_hung_loop_stops_the_pings_and_the_supervisor_restarts_the_agent(make_station, tmp_path):
    st = make_station("[watchdog]\ndefault_deadline_seconds = 30\ndeadlines = { archive = 3 }\n")
    sup = Supervisor(st, tmp_path / "notify.sock")
    try:
        t0 = time.monotonic()
        sup.start(EVIDENCE_AGENT_HANGPOINT="archive.step:3")  # the third archive pass hangs
        _wait_ready(sup, t0)
        fired = sup.watch(30)
        assert fired is not None, "pings went on although the archive loop hung"
        pings = sup.since(t0, "WATCHDOG=1")
        assert len(pings) >= 1  # it pinged while all loops were alive
        hung = [m for _, m in sup.since(t0, "STATUS=") if "HUNG: archive" in m]
        assert hung, "STATUS= never named the hung loop"
        assert not [at for at, _ in pings if at > fired - WATCHDOG_USEC / 1e6 + 0.3]

        # The restart (no hang point now): ready again, and the pings keep coming.
        t1 = time.monotonic()
        sup.start()
        _wait_ready(sup, t1)
        assert sup.watch(6) is None, "a healthy agent missed its watchdog pings"
        assert len(sup.since(t1, "WATCHDOG=1")) >= 4
        status = [m for _, m in sup.since(t1, "STATUS=")]
        assert status and "HUNG" not in status[-1] and "docked" in status[-1]
    finally:
        sup.close()


def test_slow_but_progressing_copy_keeps_the_pings_going(make_station, faultfs, tmp_path):
    st = make_station(
        "chunk_bytes = 262144\n"  # [ingest]: a progress report every 256 KiB
        "[watchdog]\ndefault_deadline_seconds = 30\ndeadlines = { ingest = 2 }\n"
    )
    rec = Recorder(tmp_path / "backing" / "SLOW0001", "SLOW0001")
    rec.record(random.Random(3), 1, lo=6 << 20, hi=6 << 20)
    sup = Supervisor(st, tmp_path / "notify.sock")
    try:
        t0 = time.monotonic()
        sup.start()
        _wait_ready(sup, t0)
        # 6 MiB at 1 MB/s: a copy lasting ~6 s, three times the ingest loop's deadline.
        faultfs(rec.volume, st.mount_root / "SLOW0001", throttle_bps=1e6)
        copy_started = time.monotonic()
        fired = sup.watch(25)
        assert fired is None, "the watchdog fired during a slow copy that was progressing"
        rows = ledger_rows(st, "SELECT state, discovered_at, spooled_at FROM recordings")
        assert [r["state"] for r in rows] in (["spooled"], ["archived"])
        took = datetime.fromisoformat(rows[0]["spooled_at"]) - datetime.fromisoformat(
            rows[0]["discovered_at"]
        )
        assert took.total_seconds() > 4, f"the copy was not slow ({took})"
        pings = [at for at, _ in sup.since(copy_started, "WATCHDOG=1")]
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        assert pings and max(gaps) < WATCHDOG_USEC / 1e6
        assert not [m for _, m in sup.since(t0, "STATUS=") if "HUNG" in m]
    finally:
        sup.close()


def test_a_read_stuck_in_the_kernel_fails_that_bay_not_the_agent(make_station, faultfs, tmp_path):
    # Issue 13: a recorder whose read hangs (faultfs `stall`: the agent's read waits in the
    # kernel) fails its recording after ingest.stall_seconds; the other bay is ingested and the
    # watchdog pings go on, so systemd does not restart the agent.
    st = make_station(
        "chunk_bytes = 262144\nstall_seconds = 2\n"  # [ingest]
        "[watchdog]\ndefault_deadline_seconds = 30\ndeadlines = { ingest = 5 }\n"
    )
    hung = Recorder(tmp_path / "backing" / "HUNG0001", "HUNG0001")
    hung.record(random.Random(5), 1, lo=2 << 20, hi=2 << 20)
    good = Recorder(tmp_path / "backing" / "GOOD0001", "GOOD0001")
    good.record(random.Random(6), 2, lo=1 << 20, hi=1 << 20)
    sup = Supervisor(st, tmp_path / "notify.sock")
    stuck = None
    try:
        t0 = time.monotonic()
        sup.start()
        _wait_ready(sup, t0)
        stuck = faultfs(hung.volume, st.mount_root / "HUNG0001", stall=[{"at": 1 << 20}])
        faultfs(good.volume, st.mount_root / "GOOD0001")
        fired = sup.watch(20)
        assert fired is None, "the watchdog fired: a stuck read took the whole agent down"
        rows = ledger_rows(
            st,
            "SELECT d.serial, r.state, r.reason FROM recordings r"
            " JOIN devices d ON d.id = r.device_id ORDER BY d.serial",
        )
        by = {(r["serial"], r["state"]) for r in rows}
        assert ("HUNG0001", "failed") in by, rows
        assert sum(1 for r in rows if r["serial"] == "GOOD0001" and r["state"] != "failed") == 2
        failed = next(r for r in rows if r["serial"] == "HUNG0001")
        assert "ingest.stall_seconds" in failed["reason"]
        errors = ledger_rows(st, "SELECT payload FROM outbox WHERE type = 'recorder.error'")
        assert any('"read_stalled"' in e["payload"] for e in errors), errors
        # Left alone until docked again: no second attempt piles up another stuck reader.
        stalls = [e for e in stuck.events() if e["fault"] == "stall"]
        assert len(stalls) == 1, stalls
    finally:
        if stuck is not None:
            stuck.set_faults()  # let the kernel's read return before the mount goes away
        sup.close()
