"""`evidence-agent keys init|show|rotate`: the station signing key as commands (issue 12);
`keys encryption ...` is agent.cli.keys_crypto.

`keys init` is enrolment: it makes the key if there is none (never a replacement once signed
checkpoints exist) and prints the fingerprint for the fleet register. `keys show` prints the
fingerprint, where the key is, and (`--pem`) the public key to pin outside the data dir
(`custody.pubkey_file`, `verify --pubkey FILE`; docs/operations.md). `keys rotate` makes a
new key and records a hand-over signed by the old one, which `verify` follows from a pinned key.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def cmd_keys(args: argparse.Namespace) -> int:
    if args.verb == "console-new":  # an operator's console key: no station needed
        from agent.cli.console import cmd_console_new

        return cmd_console_new(args)
    from agent.config import loader as config_mod
    from agent.core.errors import StationKeyError
    from agent.ledger import stationkey

    cfg = config_mod.load(args.config)
    if args.verb == "encryption":
        from agent.cli.keys_crypto import cmd_encryption

        return cmd_encryption(args, cfg)
    if args.verb == "rotate":
        return _rotate(cfg)
    if args.verb == "move-signing":
        return _move_signing(cfg)
    if args.verb == "init":
        from agent.station.context import Context
        from agent.station.ownership import require_owner

        require_owner(cfg.station.data_dir, "keys init")
        _ = Context(cfg).key  # made here if missing; refused if checkpoints need the old one
    pub = stationkey.load_public(cfg.keys_dir)
    if pub is None:
        raise StationKeyError(
            f"no station public key in {cfg.keys_dir}: run `evidence-agent keys init` as the "
            "data dir's owner (or restore keys/ from the station's backup)"
        )
    fp = stationkey.fingerprint(pub)
    pinned = cfg.custody.pubkey_fingerprint
    doc = {
        "fingerprint": fp,
        "public_key_file": str(cfg.keys_dir / stationkey.PUB_FILE),
        "signing_key_file": str(
            stationkey.private_path(cfg.keys_dir, cfg.custody.signing_key_file)
        ),
        "station": cfg.station.id,
        "pinned_fingerprint": pinned,
        "matches_pin": None if pinned is None else pinned in _lineage(cfg, fp),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    elif args.pem:
        pem = pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        print(pem.decode("ascii"), end="")
    else:
        print(f"station {doc['station']} key fingerprint {fp}")
        print(f"public key {doc['public_key_file']}")
        print(f"signing key {doc['signing_key_file']}")
        if pinned is not None:
            same = "matches" if doc["matches_pin"] else "DIFFERS"
            print(f"custody.pubkey_fingerprint {pinned}: {same}")
    return 0 if doc["matches_pin"] in (None, True) else 1


def _lineage(cfg: Any, fp: str) -> list[str]:
    """`fp` and the keys that handed over to it, newest first, as custody records them (the
    signatures are checked by `verify`, not here)."""
    import sqlite3

    if not cfg.ledger_path.exists():
        return [fp]
    conn = sqlite3.connect(f"file:{cfg.ledger_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT payload FROM custody WHERE type = 'key.rotated' ORDER BY seq DESC"
        ).fetchall()
    finally:
        conn.close()
    out = [fp]
    for (payload,) in rows:
        doc = json.loads(payload)
        if doc.get("new") == out[-1]:
            out.append(str(doc.get("old")))
    return out


def _rotate(cfg: Any) -> int:
    """A new station key, handed over by the old one (agent.ledger.handover). The daemon must
    be stopped: it holds the key it signs with."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.ledger import custody, handover, stationkey
    from agent.station import signingkey
    from agent.station.context import Context
    from agent.station.ownership import DaemonLock, require_owner

    require_owner(cfg.station.data_dir, "keys rotate")
    lock = DaemonLock(cfg.locks_dir, cfg.station.data_dir)
    lock.acquire()  # exits 75 naming the running daemon: stop it first
    try:
        ctx = Context(cfg)
        old, new = ctx.key, Ed25519PrivateKey.generate()
        own = signingkey.path(cfg)  # custody.signing_key_file, or keys/ in the data dir
        handover.write_next(own.parent, new)
        with ctx.ledger.tx() as conn:
            custody.checkpoint(conn, old, ctx.station_id, ctx.sm2)  # the old key's last word
            seq = handover.record(conn, old, new, ctx.station_id)
        conn = ctx.ledger.connect()
        handover.finish_pending(cfg.keys_dir, conn, str(own))
        with ctx.ledger.tx() as conn:
            custody.checkpoint(
                conn, new, ctx.station_id, ctx.sm2
            )  # the new key covers the hand-over
    finally:
        lock.release()
    old_fp = stationkey.fingerprint(old.public_key())
    new_fp = stationkey.fingerprint(new.public_key())
    print(f"station {cfg.station.id} key rotated at custody event {seq}: {old_fp} -> {new_fp}")
    print("note the new fingerprint in the fleet register; keys pinned before stay valid:")
    print("verify follows the hand-over signed by the old key (kept in keys/retired/)")
    return 0


def _move_signing(cfg: Any) -> int:
    """`keys move-signing`: the signing key out of the data dir, to custody.signing_key_file
    (agent.station.signingkey). The daemon must be stopped: it holds the key it signs with."""
    from agent.station import signingkey
    from agent.station.context import Context
    from agent.station.ownership import DaemonLock, require_owner

    require_owner(cfg.station.data_dir, "keys move-signing")
    lock = DaemonLock(cfg.locks_dir, cfg.station.data_dir)
    lock.acquire()  # exits 75 naming the running daemon: stop it first
    try:
        done = signingkey.move(cfg, Context(cfg).ledger)
    finally:
        lock.release()
    if not done.moved:
        print(f"signing key {done.fingerprint} is already at {done.target}; nothing changed")
        return 0
    print(f"signing key {done.fingerprint} moved from {done.source} to {done.target}")
    if done.retired:
        print(f"with {len(done.retired)} retired key(s) to {done.target.parent / 'retired'}")
    print("the public key and its fingerprint are unchanged: pins stay valid; back up the new "
          "file with the station's keys (it is no longer in the data dir)")  # fmt: skip
    return 0


def cmd_verify_archive(args: argparse.Namespace) -> int:
    """The custody chain from the archive alone (agent.actions.archivecheck); no ledger."""
    import threading
    from pathlib import Path
    from types import SimpleNamespace

    from agent.actions.archivecheck import check
    from agent.actions.exportverify import load_pubkey
    from agent.archive.local import LocalArchive
    from agent.config import loader as config_mod

    cfg = config_mod.load(args.config)
    station = args.station or cfg.station.id
    store: Any
    if cfg.archive_url.startswith("file://"):
        store = LocalArchive(cfg.archive_url, cfg.archive.off_station)
    else:
        from agent.archive.s3.store import S3Archive

        # Only listing and reading: the S3 store needs no ledger for that.
        store = S3Archive(SimpleNamespace(cfg=cfg, stop=threading.Event(), station_id=station))  # type: ignore[arg-type]
    report = check(store, station, load_pubkey(Path(args.pubkey)))
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            print(f"FAIL {p['subject']}: {p['message']}")
        print(
            f"{'OK' if report.ok else 'FAILED'}: {report.events} custody events in "
            f"{report.segments} archived segments, {report.anchors_checked} anchors; "
            f"{len(report.problems)} problem(s)"
        )
        if len(report.keys) > 1:  # key rotations followed (agent.actions.archivekeys)
            print(f"keys followed from the pinned key: {' -> '.join(report.keys)}")
        if report.sm3_events or report.sm2_anchors:  # crypto.suite = "sm" (国密)
            print(f"SM3 chain: {report.sm3_events} archived events checked; SM2: "
                  f"{report.sm2_anchors} anchor signatures checked")  # fmt: skip
    return 0 if report.ok else 1


def add_parser(add: Add) -> None:
    sp = add(
        "keys",
        cmd_keys,
        "the station signing key: init (enrolment), show, rotate, move-signing (to "
        "custody.signing_key_file); console-new: a console key "
        "pair for signed MQTT commands; encryption init|show|rotate|recover: the encryption key",
    )
    sp.add_argument(
        "verb",
        choices=["init", "show", "rotate", "move-signing", "console-new", "encryption"],
    )
    from agent.cli.keys_crypto import add_arguments

    add_arguments(sp)
    sp.add_argument("--pem", action="store_true", help="show: print the public key (PEM)")
    sp.add_argument("--out", help="console-new: directory for console.key and console.pub")
    sp.add_argument("--json", action="store_true")
    sp = add("verify-archive", cmd_verify_archive, "check custody from the archive alone")
    sp.add_argument("--pubkey", required=True, metavar="FILE", help="the pinned station key")
    sp.add_argument("--station", help="station id in the archive (default: station.id)")
    sp.add_argument("--json", action="store_true")
