"""The daemon talks to systemd (READY/WATCHDOG/STOPPING) and shares the ledger with the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import stat

from fixtures.station import ledger_rows, wait_for


def test_run_notifies_systemd_ready_watchdog_stopping(station, daemon, tmp_path):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    proc = daemon(station, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "1000000"})
    got: list[str] = []

    def receive_until(word: str) -> None:
        while not any(word in m for m in got):
            got.append(sock.recv(4096).decode())

    receive_until("READY=1")
    receive_until("WATCHDOG=1")
    proc.send_signal(signal.SIGTERM)
    receive_until("STOPPING=1")
    assert proc.wait(timeout=30) == 0
    sock.close()


def test_cli_ingest_while_daemon_runs_shares_one_ledger(station, daemon, bodycam):
    daemon(station)
    wait_for(lambda: (station.data_dir / "ledger.sqlite3").exists(), what="daemon start")
    vol_a, clips_a = bodycam(serial="ZFY0601", clips=3)
    vol_b, clips_b = bodycam(serial="ZFY0602", clips=3)
    shutil.copytree(vol_a, station.mount_root / "ZFY0601")  # the daemon takes this one
    out = station.cli("ingest", str(vol_b), "--json")  # the operator ingests this one by hand
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["copied"] == 3
    wait_for(
        lambda: (
            len(
                ledger_rows(
                    station, "SELECT 1 FROM recordings WHERE state IN ('spooled','archived')"
                )
            )
            == 6
        ),
        timeout=60,
        what="both volumes ingested",
    )
    assert len(ledger_rows(station, "SELECT 1 FROM recordings")) == 6
    verify = station.cli("verify")
    assert verify.returncode == 0, verify.stdout  # one linear custody chain


def test_station_key_is_private(station, bodycam):
    vol, _ = bodycam(serial="ZFY0603", clips=1)
    station.cli("ingest", str(vol), check=True)
    key = station.data_dir / "keys" / "station.ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cps = ledger_rows(station, "SELECT * FROM checkpoints")
    assert cps and cps[-1]["head_seq"] > 0
