"""Commands that set a station up, keep it and move it: `check-config`, `demo`,
`install-systemd`, `backup`, `restore`, and `verify-export` (checks an export anywhere).

Kept out of agent.cli.main for size; main adds them to its parser.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from agent.config import loader as config_mod
from agent.core.errors import ConfigError


def cmd_verify_export(args: argparse.Namespace) -> int:
    from agent.actions.exportverify import load_pubkey, verify_export

    report = verify_export(Path(args.dir), load_pubkey(Path(args.pubkey)))
    if args.json:
        doc = {"ok": report.ok, "manifests": report.manifests,
               "files_checked": report.files_checked, "problems": report.problems}  # fmt: skip
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        print(f"{'OK' if report.ok else 'FAILED'}: {report.manifests} manifests, "
              f"{report.files_checked} files checked")  # fmt: skip
    return 0 if report.ok else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from agent.actions import backup

    path = args.config or os.environ.get("EVIDENCE_AGENT_CONFIG")
    cfg_file = Path(path) if path else None
    result = backup.backup(config_mod.load(args.config), Path(args.dest), cfg_file)
    for problem in result.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    print(f"backup {result.dest}: {len(result.files)} files, manifest {backup.MANIFEST}")
    return 1 if result.problems else 0


def cmd_restore(args: argparse.Namespace) -> int:
    from agent.actions import backup

    cfg = config_mod.load(args.config)
    n = backup.restore(cfg, Path(args.src))
    print(f"restored {n} files into {cfg.station.data_dir}; run `evidence-agent verify` next")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or args.config
    try:
        cfg = config_mod.load(path)
        from agent.actions.check_config import deep_check

        problems = deep_check(cfg)
        if problems:
            raise ConfigError(problems, str(path) if path else None)
    except ConfigError as exc:
        where = f" ({exc.source})" if exc.source else ""
        print(f"configuration invalid{where}:", file=sys.stderr)
        for key, msg in exc.problems:
            print(f"  {key}: {msg}", file=sys.stderr)
        return 78
    print(
        f"configuration OK ({path or 'embedded defaults'}): station {cfg.station.id}, "
        f"data_dir {cfg.station.data_dir}"
    )
    from agent.compliance.calendar_check import config_warning

    warning = config_warning(cfg)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    from agent.actions.check_config import gate_warnings
    from agent.config.smbays import suite_warnings
    from agent.station import kek, signingkey

    for line in [
        *kek.warnings(cfg),
        *signingkey.warnings(cfg),
        *suite_warnings(cfg),
        *gate_warnings(cfg),
    ]:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.cli.demo import run_demo

    return run_demo(args)


def cmd_install_systemd(args: argparse.Namespace) -> int:
    from agent.cli.install_systemd import cli_install

    return cli_install(args)


# --- parser -----------------------------------------------------------------------------------


AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def add_station_commands(add: AddCommand) -> None:
    """Setting a station up, keeping it and moving it: `demo`, `install-systemd`, `backup`,
    `restore`, and `verify-export` (checks an export away from any station)."""
    sp = add("verify-export", cmd_verify_export, "check an export offline (no ledger needed)")
    sp.add_argument("dir", help="the export directory")
    sp.add_argument("--pubkey", required=True, help="the station's public key (PEM)")
    sp.add_argument("--json", action="store_true")
    sp = add("backup", cmd_backup, "consistent backup: ledger, copies, keys, config, manifest")
    sp.add_argument("dest", help="new or empty directory to write the backup into")
    sp = add("restore", cmd_restore, "restore a backup into the configured (empty) data dir")
    sp.add_argument("src", help="a directory written by `evidence-agent backup`")
    from agent.cli.keys import add_parser as add_keys

    add_keys(add)
    sp = add("check-config", cmd_check_config, "validate a config file; exit 78 on error")
    sp.add_argument("file", nargs="?")
    sp = add("demo", cmd_demo, "simulated dock with several recorders, live view, summary")
    sp.add_argument("--recorders", type=int, default=4)
    sp.add_argument("--clips", type=int, default=3)
    sp.add_argument("--seconds", type=float, default=4.0)
    sp.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    sp.add_argument(
        "--mqtt",
        action="store_true",
        help="publish to a local Mosquitto (TCP + WebSocket) and serve the fleet dashboard",
    )
    sp.add_argument(
        "--hold",
        type=float,
        default=None,
        metavar="S",
        help="with --mqtt: keep running S seconds after ingest (default: until Ctrl-C on a "
        "terminal, 0 otherwise)",
    )
    sp = add("install-systemd", cmd_install_systemd, "install unit, tmpfiles and udev rule")
    sp.add_argument("--dest", default="/")
    sp.add_argument("--dry-run", action="store_true")
    sp.add_argument(
        "--rw",
        action="store_true",
        help="mount recorders read-write (needed unless release_after = never)",
    )
    sp.add_argument("--user", default="evidence")
    sp.add_argument(
        "--sealed-key",
        action="store_true",
        help="write LoadCredentialEncrypted= for the sealed station key even if "
        "/etc/evidence-agent/credstore.encrypted/evidence-agent-encryption-key does not exist yet",
    )
    sp.add_argument("--data-dir", default=None)
    sp.add_argument("--mount-root", default=None)
