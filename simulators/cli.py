"""`evidence-agent simulate ...`: the simulators from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def add_arguments(sp: argparse.ArgumentParser) -> None:
    kinds = sp.add_subparsers(dest="kind", required=True, metavar="KIND")
    bc = kinds.add_parser("bodycam", help="write a simulated recorder volume with real footage")
    bc.add_argument("--out", required=True, help="volume directory to create")
    bc.add_argument("--serial", default="ZFY0001")
    bc.add_argument("--officer", default="100001")
    bc.add_argument("--unit", default="UNIT01")
    bc.add_argument("--vendor", default="ZFY")
    bc.add_argument("--clips", type=int, default=3)
    bc.add_argument("--seconds", type=float, default=2.0)
    bc.add_argument("--start", default=None, help="ISO time of the first clip (default: now)")
    bc.add_argument("--size", default="320x240", help="frame size WxH (default 320x240)")
    bc.add_argument("--fps", type=int, default=10)
    bc.add_argument(
        "--fault",
        action="append",
        default=[],
        help="truncated, growing, zero-byte, wrong-clock, extra-files (repeatable)",
    )
    bc.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        help="recorder clock error in seconds (wrong-clock defaults to +3 h)",
    )
    bc.add_argument(
        "--grow-seconds",
        type=float,
        default=10.0,
        help="with --fault growing: keep writing the last clip this long",
    )

    ir = kinds.add_parser(
        "interview-room",
        help="cameras (MJPEG over HTTP), a microphone (WAV over HTTP) and a control panel (pty)",
    )
    ir.add_argument("--cameras", type=int, default=1)
    ir.add_argument("--size", default="320x240", help="frame size WxH (default 320x240)")
    ir.add_argument("--fps", type=float, default=10.0)
    ir.add_argument("--rate", type=int, default=16000, help="microphone sample rate")
    ir.add_argument("--no-panel", action="store_true", help="no control panel")
    ir.add_argument("--control-port", type=int, default=0, help="HTTP control port (0: any)")
    ir.add_argument("--config-out", help="also write the agent config snippet to this file")
    ir.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop after this long (default: Ctrl-D at a terminal, else SIGTERM/SIGINT)",
    )
    _dock_arguments(kinds)
    from simulators.faultfs_cli import add_faultfs_arguments

    add_faultfs_arguments(kinds)


def _dock_arguments(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dk = kinds.add_parser(
        "dock", help="N bays plugging simulated USB/serial/mass-storage recorders on a script"
    )
    dk.add_argument("--bays", type=int, default=8)
    dk.add_argument("--mount-root", required=True, help="where volumes appear (agent's root)")
    dk.add_argument("--usb-socket", default=None, help='Unix socket; agent: backend = "sim:..."')
    dk.add_argument("--tty-dir", default=None, help="serial bays are linked here as bayN")
    dk.add_argument("--recorders", type=int, default=12)
    dk.add_argument(
        "--transports",
        default=None,
        help="comma list cycled over the recorders: usb, ambarella, serial, mass_storage "
        "(default: all that the given socket/tty dir allow)",
    )
    dk.add_argument("--script", default="shift-change", help="shift-change, all-at-once or FILE")
    dk.add_argument("--window", type=float, default=120.0, help="shift-change arrival window s")
    dk.add_argument("--dwell", type=float, default=None, help="seconds a recorder stays docked")
    dk.add_argument("--time-scale", type=float, default=1.0, help="0.1 = ten times faster")
    dk.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    dk.add_argument("--password", default="123456", help="recorders' admin password")
    dk.add_argument("--serial-prefix", default="DSJ")
    dk.add_argument("--officer-start", type=int, default=100001)
    dk.add_argument("--unit", default="UNIT01")
    dk.add_argument("--clips", type=int, default=2)
    dk.add_argument("--seconds", type=float, default=2.0)
    dk.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="SERIAL:SECONDS",
        help="recorder clock offset, e.g. DSJ0003:10800 (repeatable)",
    )


def run_simulator(args: argparse.Namespace) -> int:
    if args.kind == "bodycam":
        return _bodycam(args)
    if args.kind == "interview-room":
        return _interview_room(args)
    if args.kind == "dock":
        from simulators.dock_cli import run_dock_cli

        return run_dock_cli(args)
    if args.kind == "faultfs":
        from simulators.faultfs_cli import run_faultfs_cli

        return run_faultfs_cli(args)
    print(f"unknown simulator {args.kind}", file=sys.stderr)
    return 64


def _bodycam(args: argparse.Namespace) -> int:
    from simulators.bodycam import BodycamSpec, grow_clip, write_volume

    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
        spec = BodycamSpec(
            serial=args.serial,
            officer=args.officer,
            unit=args.unit,
            vendor=args.vendor,
            clips=args.clips,
            seconds=args.seconds,
            start=datetime.fromisoformat(args.start) if args.start else None,
            clock_offset_s=args.clock_offset,
            faults=tuple(args.fault),
            width=w,
            height=h,
            fps=args.fps,
        )
        out = Path(args.out)
        clips = write_volume(out, spec)
    except ValueError as exc:
        print(f"simulate bodycam: {exc}", file=sys.stderr)
        return 64
    print(f"wrote {len(clips)} clips to {out} (recorder {args.serial}, officer {args.officer})")
    for c in clips:
        print(f"  {c.relative_to(out)}  {c.stat().st_size} bytes")
    if "growing" in args.fault:
        print(f"growing {clips[-1].name} for {args.grow_seconds} s ...", flush=True)
        grow_clip(clips[-1], args.grow_seconds)
        print("done")
    return 0


def _room_stdin(room: Any, done: Any, end_on_eof: bool) -> None:
    """Typed room commands (`cam1 frozen`); end of input ends the room only if asked."""
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2:
            continue
        try:
            print(room.command(words[0], words[1]), flush=True)
        except (KeyError, ValueError) as exc:
            print(f"error: {exc}", flush=True)
    if end_on_eof:
        done.set()


def _interview_room(args: argparse.Namespace) -> int:
    import threading

    from simulators.room import RoomSim

    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
        if args.cameras < 1:
            raise ValueError("--cameras must be at least 1")
        room = RoomSim(args.cameras, w, h, args.fps, args.rate, panel=not args.no_panel)
    except ValueError as exc:
        print(f"simulate interview-room: {exc}", file=sys.stderr)
        return 64
    room.start(args.control_port)
    snippet = room.config_snippet()
    if args.config_out:
        Path(args.config_out).write_text(snippet, encoding="utf-8")
    print("simulated interview room running; add this to the agent config:\n")
    print(snippet)
    print(f"control: POST {room.control_url}/<device>/<command>, GET {room.control_url}/status")
    print(
        "or type: cam1 frozen|stalled|dropped|black|return, mic frozen|dropped|return, "
        "panel start|stop|mark|hello; Ctrl-D or Ctrl-C ends",
        flush=True,
    )
    done = threading.Event()
    # From a terminal, Ctrl-D ends the room; from a script or a unit (stdin /dev/null or a
    # pipe) end of input means nothing: run for --seconds, or until SIGTERM/SIGINT.
    interactive = sys.stdin is not None and sys.stdin.isatty()
    # Set from a thread: a handler calling done.set() could wait on the lock its own
    # (main) thread holds inside done.wait() (see agent/core/stopsignal.py).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=done.set).start())

    if sys.stdin is not None:
        end_on_eof = args.seconds is None and interactive
        threading.Thread(
            target=_room_stdin, args=(room, done, end_on_eof), name="sim-stdin", daemon=True
        ).start()
    try:
        done.wait(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        room.close()
    return 0
