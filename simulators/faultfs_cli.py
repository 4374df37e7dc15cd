"""`evidence-agent simulate faultfs`: serve a directory through the fault-injecting FUSE
filesystem of simulators/faultfs.py, in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_faultfs_arguments(kinds: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ff = kinds.add_parser(
        "faultfs",
        help="serve a directory through a fault-injecting FUSE filesystem (foreground)",
        description="Mount BACKING on MOUNT through FUSE and inject faults on command: read "
        "errors, early EOF, a file changing while read, unplug, throttling (recorder side); "
        "fsync errors (spool side). Faults come from the flags and from the JSON control "
        "file, re-read whenever it is replaced (see simulators/faultfs.py). Stops on "
        "unmount, SIGTERM or Ctrl-C.",
    )
    ff.add_argument("--backing", required=True, help="directory to serve")
    ff.add_argument("--mount", required=True, help="empty directory to mount on")
    ff.add_argument("--fs", dest="fs_kind", choices=("recorder", "spool"), default="recorder")
    ff.add_argument("--control", default=None, help="JSON control file (re-read when replaced)")
    ff.add_argument("--events", default=None, help="append injected faults here (JSON lines)")
    ff.add_argument("--allow-erase", action="store_true", help="recorder: allow unlink")
    ff.add_argument("--fsname", default="evagent-faultfs", help="source name in mountinfo")
    ff.add_argument("--throttle-mbps", type=float, default=None, help="cap reads (MB/s)")
    for name, what in (
        ("eio", "fail reads of files matching GLOB with EIO from byte N"),
        ("eof", "end files matching GLOB early, at byte N"),
        ("change", "rewrite a file matching GLOB when a read passes byte N"),
        ("unplug", "unplug when a read of a file matching GLOB passes byte N"),
    ):
        ff.add_argument(f"--{name}", action="append", default=[], metavar="GLOB:N", help=what)
    ff.add_argument(
        "--fsync-eio", action="append", default=[], metavar="GLOB[:TIMES]",
        help="spool: fsync of files matching GLOB returns EIO (TIMES times)",
    )  # fmt: skip


def _rule(text: str, key: str) -> dict[str, object]:
    glob, sep, num = text.rpartition(":")
    if not sep or not num.isdigit():
        raise ValueError(f"{text!r}: expected GLOB:{key.upper()}")
    return {"path": glob, key: int(num)}


def run_faultfs_cli(args: argparse.Namespace) -> int:
    try:
        from simulators.faultfs import serve
    except ImportError as exc:  # pragma: no cover - mfusepy is a test extra
        print(f"simulate faultfs needs mfusepy and fuse3: {exc}", file=sys.stderr)
        return 69
    try:
        spec: dict[str, object] = {
            k: [_rule(t, "at") for t in getattr(args, k)]
            for k in ("eio", "eof", "change", "unplug")
        }
        spec["fsync_eio"] = [_rule(t, "times") if ":" in t else {"path": t} for t in args.fsync_eio]
    except ValueError as exc:
        print(f"simulate faultfs: {exc}", file=sys.stderr)
        return 64
    if args.throttle_mbps:
        spec["throttle_bps"] = args.throttle_mbps * 1e6
    control = Path(args.control) if args.control else None
    if control is not None and any(spec.values()):
        tmp = control.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec), encoding="utf-8")
        os.replace(tmp, control)
    elif control is None and any(spec.values()):
        print("simulate faultfs: fault flags need --control FILE to live in", file=sys.stderr)
        return 64
    try:
        serve(
            args.fs_kind,
            Path(args.backing),
            Path(args.mount),
            control,
            Path(args.events) if args.events else None,
            allow_erase=args.allow_erase,
            fsname=args.fsname,
        )
    except (OSError, RuntimeError, ValueError) as exc:
        print(
            f"simulate faultfs: cannot serve {args.backing} on {args.mount}: {exc}", file=sys.stderr
        )
        return 1
    return 0
