"""`evidence-agent simulate dock`: a dock simulator process an agent can be pointed at."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simulators.bodycam import BodycamSpec
from simulators.dock import run_dock
from simulators.dockscript import TRANSPORTS, DockRecorder, DockScript, builtin, load


def _transports(args: argparse.Namespace) -> list[str]:
    if args.transports:
        chosen = [t.strip() for t in args.transports.split(",") if t.strip()]
    else:
        chosen = ["usb", "usb", "serial", "ambarella", "mass_storage"]
        if not args.usb_socket:
            chosen = [t for t in chosen if t not in ("usb", "ambarella")]
        if not args.tty_dir:
            chosen = [t for t in chosen if t != "serial"]
    bad = [t for t in chosen if t not in TRANSPORTS]
    if bad or not chosen:
        raise ValueError(f"--transports: {bad or 'empty'}; choose from {list(TRANSPORTS)}")
    return chosen


def _recorders(args: argparse.Namespace) -> list[DockRecorder]:
    drift: dict[str, float] = {}
    for item in args.drift:
        serial, sep, secs = item.partition(":")
        if not sep:
            raise ValueError(f"--drift {item!r}: expected SERIAL:SECONDS")
        drift[serial] = float(secs)
    kinds = _transports(args)
    out = []
    for i in range(args.recorders):
        serial = f"{args.serial_prefix}{i + 1:04d}"
        spec = BodycamSpec(
            serial=serial,
            officer=str(args.officer_start + i),
            unit=args.unit,
            clips=args.clips,
            seconds=args.seconds,
            clock_offset_s=drift.get(serial, 0.0),
        )
        spec.validate()
        out.append(DockRecorder(spec, transport=kinds[i % len(kinds)], password=args.password))
    return out


def _config_hint(args: argparse.Namespace) -> str:
    lines = ["# agent config for this dock (password: credential zfy_admin_password):"]
    lines.append(f'[detect]\nmount_roots = ["{Path(args.mount_root).resolve()}"]')
    if args.usb_socket:
        sock = Path(args.usb_socket).resolve()
        lines.append(f'[[drivers]]\ntype = "zfy_usb"\nbackend = "sim:{sock}"')
        lines.append(
            f'[[drivers]]\ntype = "zfy_usb"\nprofile = "ambarella"\nbackend = "sim:{sock}"'
        )
    if args.tty_dir:
        lines.append(f'[[drivers]]\ntype = "serial"\nports = ["{Path(args.tty_dir).resolve()}/*"]')
    return "\n".join(lines)


def run_dock_cli(args: argparse.Namespace) -> int:
    try:
        script_arg: DockScript | str = args.script
        recorders = _recorders(args)
        if Path(args.script).suffix == ".toml" or Path(args.script).is_file():
            script = load(Path(args.script))
            recorders = script.recorders or recorders
            script_arg = script
        else:
            dwell = args.dwell
            if dwell is None and len(recorders) > args.bays:
                dwell = 600.0  # a shift's recorders cannot all fit: bays free up after 10 min
            script_arg = builtin(args.script, [r.serial for r in recorders], args.bays,
                                 args.window, dwell)  # fmt: skip
    except ValueError as exc:
        print(f"simulate dock: {exc}", file=sys.stderr)
        return 64
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # From a thread, never in the handler itself (see agent/core/stopsignal.py).
        signal.signal(sig, lambda *_: threading.Thread(target=stop.set).start())
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()

    def ready(dock: object) -> None:
        print(_config_hint(args), flush=True)
        print(f"dock ready: {len(recorders)} recorders, {args.bays} bays", flush=True)

    try:
        dock = run_dock(
            Path(args.mount_root), args.bays, recorders, stop, script_arg,
            usb_socket=Path(args.usb_socket) if args.usb_socket else None,
            tty_dir=Path(args.tty_dir) if args.tty_dir else None,
            time_scale=args.time_scale, on_ready=ready,
        )  # fmt: skip
    except (ValueError, OSError) as exc:
        print(f"simulate dock: {exc}", file=sys.stderr)
        return 64 if isinstance(exc, ValueError) else 1
    for entry in dock.log:
        print(f"{entry.at:8.2f}s  {entry.action:7s} {entry.serial} bay {entry.bay} {entry.note}")
    return 0
