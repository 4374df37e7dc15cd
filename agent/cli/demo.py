"""`evidence-agent demo`: a simulated dock with several recorders, ingested live.

Everything runs on embedded defaults in a work directory: recorders are written by the bodycam
simulator and docked one after another under a mount root; the real daemon (detect, ingest,
archive, checkpoint threads) picks them up; a live table shows progress; a summary and a
`verify` run close it.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from agent.actions import verify
from agent.cli.demo_mqtt import DemoMqtt, write_inventory, write_roster
from agent.config import loader as config_mod
from agent.daemon.main import Daemon
from agent.station.context import Context

OFFICERS = [
    ("100101", "王伟"),
    ("100102", "李娜"),
    ("100103", "张磊"),
    ("100104", "刘洋"),
    ("100105", "陈静"),
    ("100106", "杨帆"),
    ("100107", "赵敏"),
    ("100108", "黄勇"),
]


def _config(work: Path, extra: dict[str, str] | None = None) -> config_mod.AgentConfig:
    # The drivers talk to the dock simulator exactly as they would to hardware: the ZFY USB
    # driver through the simulator's pyusb backend socket, the serial driver on its ptys.
    drivers = (
        f'[{{type="zfy_usb", name="usb", backend="sim:{work / "usb.sock"}", poll_seconds=0.5}},'
        f' {{type="serial", name="serial", ports=["{work / "tty"}/bay*"], poll_seconds=0.5}}]'
    )
    env = {
        "EVIDENCE_AGENT__STATION__ID": "demo-dock",
        "EVIDENCE_AGENT__STATION__DATA_DIR": f'"{work / "data"}"',
        "EVIDENCE_AGENT__DETECT__MOUNT_ROOTS": f'["{work / "media"}"]',
        "EVIDENCE_AGENT__DETECT__SETTLE_SECONDS": "0.5",
        "EVIDENCE_AGENT__DETECT__POLL_SECONDS": "0.25",
        "EVIDENCE_AGENT__INGEST__SPOOL_RESERVE_BYTES": "0",
        "EVIDENCE_AGENT__CREDENTIALS__FILE": f'"{work / "credentials"}"',
        "EVIDENCE_AGENT__DRIVERS": drivers,
        # Its own register and gate: whoever runs the demo may tag, decide and export in it.
        "EVIDENCE_AGENT__OPERATORS__FILE": f'"{_demo_register(work)}"',
        "EVIDENCE_AGENT__API__SOCKET": f'"{work / "run" / "api.sock"}"',
        **_demo_keys(work),
        **(extra or {}),  # demo --mqtt: the local broker, a roster, the fleet ratio
    }
    return config_mod.load(None, environ=env)


def _demo_keys(work: Path) -> dict[str, str]:
    """Encryption at rest as a fresh install has it: a station key outside the data dir and
    a recovery pair standing in for the agency's (docs/security.md)."""
    from agent.station import kek

    key, agency = work / "keys" / "encryption.key", work / "agency"
    if not key.exists():
        kek.write_ring(key, [os.urandom(32)])
    if not (agency / "recovery.pub").exists():
        kek.new_recovery_pair(agency)
    return {
        "EVIDENCE_AGENT__CRYPTO__KEY_FILE": f'"{key}"',
        "EVIDENCE_AGENT__CRYPTO__RECOVERY_PUBLIC_KEY": f'"{agency / "recovery.pub"}"',
    }


def _demo_register(work: Path) -> Path:
    import pwd

    login = pwd.getpwuid(os.geteuid()).pw_name
    path = work / "operators.csv"
    path.write_text(
        "officer_id,login,name,roles,cert_no,active\n"
        f"demo,{login},演示操作员,officer;custodian;supervisor;admin,DEMO-0001,1\n",
        encoding="utf-8",
    )
    return path


class _Board:
    """Per-recorder progress, fed by the daemon's progress callback."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes: dict[str, dict[str, tuple[int, int]]] = {}

    def progress(self, serial: str, rid: str, done: int, total: int) -> None:
        with self.lock:
            self.bytes.setdefault(serial, {})[rid] = (done, total)


TRANSPORTS = ("usb", "usb", "serial", "mass_storage")


def _recorders(args: argparse.Namespace) -> list[Any]:
    from simulators.bodycam import BodycamSpec
    from simulators.dockscript import DockRecorder

    start = datetime.now() - timedelta(hours=3)
    out = []
    for i in range(args.recorders):
        officer, name = OFFICERS[i % len(OFFICERS)]
        spec = BodycamSpec(
            serial=f"ZFY{1001 + i:04d}",
            officer=officer,
            officer_name=name,
            unit=f"UNIT0{1 + i % 2}",
            clips=args.clips,
            seconds=args.seconds,
            start=start + timedelta(minutes=20 * i),
            width=640,
            height=360,
            fps=15,
        )
        out.append(
            DockRecorder(spec, transport=TRANSPORTS[i % len(TRANSPORTS)], battery_pct=90 - 7 * i)
        )
    return out


def _start_dock(args: argparse.Namespace, work: Path, stop: threading.Event) -> threading.Thread:
    """Run the dock simulator (shift change: recorders arrive one after another)."""
    from simulators.dock import run_dock

    ready = threading.Event()
    recorders = _recorders(args)
    (work / "tty").mkdir(exist_ok=True)

    def body() -> None:
        run_dock(
            work / "media",
            max(args.recorders, 1),
            recorders,
            stop,
            "shift-change",
            usb_socket=work / "usb.sock",
            tty_dir=work / "tty",
            window_s=max(2.0, 1.0 * args.recorders),
            ready=ready,
        )

    t = threading.Thread(target=body, name="demo-dock", daemon=True)
    t.start()
    ready.wait(120)  # footage written and the USB socket listening
    return t


def _table(ctx: Context, board: _Board) -> Table:
    t = Table(title=f"dock {ctx.station_id}: recorders")
    for col in (
        "recorder",
        "via",
        "officer",
        "unit",
        "battery",
        "clips",
        "spooled",
        "archived",
        "progress",
    ):
        t.add_column(col, no_wrap=True)
    devices = ctx.ledger.query("SELECT * FROM devices ORDER BY serial")
    for d in devices:
        counts = {
            r[0]: r[1]
            for r in ctx.ledger.query(
                "SELECT state, COUNT(*) FROM recordings WHERE device_id=? GROUP BY state",
                (d["id"],),
            )
        }
        total = sum(counts.values())
        with board.lock:
            prog = board.bytes.get(d["serial"], {})
            done = sum(a for a, _ in prog.values())
            size = sum(b for _, b in prog.values())
        pct = f"{100 * done / size:5.1f}%" if size else "-"
        battery = f"{d['battery_pct']}%" if d["battery_pct"] is not None else "-"
        t.add_row(
            d["serial"],
            d["serial_source"],
            d["officer_id"] or "-",
            d["unit_id"] or "-",
            battery,
            str(total),
            str(counts.get("spooled", 0) + counts.get("archived", 0)),
            str(counts.get("archived", 0)),
            pct,
        )
    return t


def _done(ctx: Context, expected: int) -> bool:
    row = ctx.ledger.one("SELECT COUNT(*) FROM recordings WHERE state IN ('archived')")
    return row is not None and row[0] >= expected


def run_demo(args: argparse.Namespace) -> int:
    console = Console()
    if args.log_level == "info":  # the live table is the demo's output; keep logs for problems
        logging.getLogger().setLevel(logging.WARNING)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="evidence-demo-"))
    (work / "media").mkdir(parents=True, exist_ok=True)
    creds = work / "credentials"
    creds.write_text("zfy_admin_password=123456\n", encoding="utf-8")  # the simulators' password
    creds.chmod(0o600)
    services = _start_mqtt(work) if args.mqtt else None
    try:
        return _run(args, console, work, services)
    finally:
        if services is not None:
            services.stop()


def _start_mqtt(work: Path) -> DemoMqtt:
    services = DemoMqtt(work).start()
    services.announce()
    return services


def _run(args: argparse.Namespace, console: Console, work: Path, services: DemoMqtt | None) -> int:
    extra = None
    if services is not None:
        specs = [r.spec for r in _recorders(args)]
        inventory = write_inventory(work, [(s.vendor, s.serial, s.unit) for s in specs])
        extra = services.environ(write_roster(work, OFFICERS), inventory)
    ctx = Context(_config(work, extra))
    board = _Board()
    daemon = Daemon(ctx, progress=board.progress)
    expected = args.recorders * args.clips
    console.print(
        f"[bold]evidence-agent demo[/]: {args.recorders} simulated recorders × "
        f"{args.clips} clips, work dir {work}"
    )
    dock_stop = threading.Event()
    _start_dock(args, work, dock_stop)
    daemon.start()
    started = time.monotonic()
    try:
        with Live(_table(ctx, board), console=console, refresh_per_second=4) as live:
            while not _done(ctx, expected) and time.monotonic() - started < 600:
                time.sleep(0.25)
                live.update(_table(ctx, board))
            live.update(_table(ctx, board))
        console.print()
        if services is not None:
            services.hold(args.hold)  # the agent keeps publishing while the page is open
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
    finally:
        daemon.shutdown()
        dock_stop.set()
    return _summary(console, ctx, work, expected, time.monotonic() - started, args)


def _summary(
    console: Console,
    ctx: Context,
    work: Path,
    expected: int,
    elapsed: float,
    args: argparse.Namespace,
) -> int:
    rows = ctx.ledger.query(
        "SELECT d.serial, COUNT(*) AS n, SUM(r.size) AS bytes,"
        " SUM(r.state IN ('spooled','archived')) AS ok, SUM(r.deadline_met_at <= r.deadline)"
        " AS met, MIN(r.deadline) AS first_deadline FROM recordings r JOIN devices d"
        " ON d.id = r.device_id GROUP BY d.serial ORDER BY d.serial"
    )
    t = Table(title="summary")
    for col in ("recorder", "clips", "bytes", "ingested+verified", "deadline met", "due by"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["serial"],
            str(r["n"]),
            f"{r['bytes']:,}",
            str(r["ok"]),
            str(r["met"]),
            (r["first_deadline"] or "-")[:10],
        )
    report = verify.run(ctx)
    result: dict[str, Any] = report.to_dict()
    console.print(
        Group(
            t,
            f"verify: {'[green]OK[/]' if report.ok else '[red]FAILED[/]'} — "
            f"{result['recordings_checked']} copies re-hashed, "
            f"{result['custody_events']} custody events, "
            f"{result['checkpoints']} signed checkpoints; "
            f"{elapsed:.1f} s",
        )
    )
    ingested = sum(r["ok"] or 0 for r in rows)
    ctx.close()
    if not args.dir:
        console.print(f"(work dir {work} kept for inspection; remove it when done)")
    if ingested < expected:
        console.print(f"[red]only {ingested} of {expected} recordings ingested[/]")
        return 1
    return 0 if report.ok else 1
