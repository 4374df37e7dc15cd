"""`evidence-agent simulate ...`: the simulators from the command line."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path


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


def run_simulator(args: argparse.Namespace) -> int:
    if args.kind == "bodycam":
        return _bodycam(args)
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
