"""Exports through the gate: the daemon authorises and hands out read-only descriptors.

The client, running as the operator, writes the files into the operator's own directory (the
daemon never writes outside its data dir). Steps on one connection: the daemon grants and
records `export.started`, sends read-only descriptors of the copies (SCM_RIGHTS; an archived
copy is first fetched into an unlinked temp file, an encrypted one streams its plaintext
through a pipe); the client copies and hashes them and
says which arrived intact; the daemon records `recording.exported` (or `integrity.violation`)
and returns the signed manifest for the client to write.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
import uuid
from typing import Any

from agent.access import gate, retrieval, wire
from agent.access.gate import Caller
from agent.access.register import Operator
from agent.actions import sm2manifest
from agent.actions.export import MANIFEST_SCHEMA, Exported, Exporter
from agent.core import clock, sealedio
from agent.core.errors import AgentError
from agent.daemon.api_params import Server, refs, resolver, text
from agent.ledger import custody, integrity, paths, stationkey
from agent.ledger import exported as exported_event
from agent.ledger import recordings as rec
from agent.rules import archive_keys


def _open(exporter: Exporter, row: sqlite3.Row) -> tuple[int, str]:
    # Stored relative to the spool root (migration 0008); old flagged rows stay absolute.
    spool = paths.spool_file(exporter.ctx.cfg, row["spool_path"])
    if spool is not None and row["spool_removed_at"] is None and spool.exists():
        if sealedio.is_sealed(spool):  # plaintext over a pipe, never in clear on a disk
            return sealedio.plaintext_pipe(spool, exporter.ctx.keyring), "spool"
        return os.open(spool, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "spool"
    if not row["archive_ref"]:
        raise AgentError(f"recording {row['id']} has no spool copy and is not archived")
    local = getattr(exporter.store, "file_of", None)
    if local is not None:  # the local archive: its copy may be encrypted, never decrypt to disk
        return sealedio.plaintext_pipe(local(row["archive_ref"]), exporter.ctx.keyring), "archive"
    tmpdir = exporter.ctx.cfg.station.data_dir / "tmp"
    tmpdir.mkdir(exist_ok=True, mode=0o700)
    tmp = tempfile.TemporaryFile(dir=tmpdir)  # noqa: SIM115 - its fd is handed to the client
    with exporter.store.open_read(row["archive_ref"]) as src:
        shutil.copyfileobj(src, tmp, 4 << 20)
    tmp.flush()
    fd = os.open(f"/proc/self/fd/{tmp.fileno()}", os.O_RDONLY | os.O_CLOEXEC)
    tmp.close()
    return fd, "archive"


def _plan(server: Server, params: dict[str, Any], req: str) -> tuple[str, gate.Resolve, gate.Check]:
    """`export run REQ` (the request's recordings and rules) or the one-step path."""
    access = server.ctx.cfg.access
    if req:
        return "export.run", retrieval.recordings_of(req), retrieval.check_run(access, req)
    wanted = refs(params)
    if not wanted:
        raise AgentError("no recordings given: name them by id or SHA-256 prefix")
    return "export", resolver(wanted), retrieval.check_one_step(access)


def serve_export(
    server: Server, caller: Caller, params: dict[str, Any], s: socket.socket
) -> dict[str, Any]:
    """`export ID... --to DIR` (one step, where no approval is needed) or `export run REQ`."""
    ctx = server.ctx
    req = text(params, "request", limit=64)
    reason = "" if req else text(params, "reason", required=True)  # a run has the request's
    to = text(params, "to", required=True, limit=4096)  # shown in custody; never opened here
    export_id = str(uuid.uuid4())  # ties export.started to recording.exported, as `export` does
    action, resolve, check = _plan(server, params, req)

    def started(conn: sqlite3.Connection, op: Operator, ids: list[str]) -> tuple[Operator, str]:
        # The one-step path is a request executed at once: the borrow register lists it too.
        rid_ = req or retrieval.create(conn, op, ids, reason)["id"]
        retrieval.mark_executed(conn, rid_, export_id, to)
        why = retrieval.get(conn, rid_)["reason"]
        for rid in ids:
            custody.append(
                conn,
                "export.started",
                {
                    "export": export_id,
                    "request": rid_,
                    "operator": op.officer_id,
                    "via": caller.via,
                    "reason": why,
                    "to": to,
                },
                recording_id=rid,
                actor=op.officer_id,
            )
        return op, rid_

    op, req_id = gate.run(ctx.ledger, server.register, caller, action, resolve, started, check)
    reason = retrieval.get(ctx.ledger.connect(), req_id)["reason"]
    exporter = Exporter(ctx)
    files, fds, failed = [], [], []
    for rid in resolve(ctx.ledger.connect()):
        row = rec.get(ctx.ledger.connect(), rid)
        assert row is not None
        try:
            if not row["sha256"]:
                raise AgentError(f"recording {rid} has not been copied yet ({row['state']})")
            fd, source = _open(exporter, row)
        except (AgentError, OSError) as exc:
            failed.append([rid, str(exc)])
            continue
        fds.append(fd)
        name = f"{rid}{archive_keys.extension(row['source_path'])}"
        files.append(
            {
                "id": rid,
                "file": name,
                "sha256": row["sha256"],
                "size": row["size"],
                "source": source,
            }
        )
    try:
        wire.send(s, {"stage": "files", "files": files, "failed": failed}, fds)
    finally:
        for fd in fds:
            os.close(fd)
    reply, extra = wire.recv(s)
    for fd in extra:
        os.close(fd)
    reply["export"] = export_id
    if "aborted" in reply:
        why = f"signal {reply['aborted']}"[:200]
        exporter.record_aborted(export_id, [f["id"] for f in files], op.officer_id, why)
        return {"aborted": True}
    result = _finish(server, op, files, reply, (reason, req_id), failed)
    exporter.record_aborted(export_id, [rid for rid, _ in failed], op.officer_id, "failed")
    return result


def _finish(
    server: Server,
    op: Operator,
    files: list[dict[str, Any]],
    reply: dict[str, Any],
    asked: tuple[str, str],
    failed: list[list[str]],
) -> dict[str, Any]:
    ctx = server.ctx
    reason, req = asked
    by_id = {f["id"]: f for f in files}
    done_ids = [d for d in reply.get("done", []) if isinstance(d, str) and d in by_id]
    bad_ids = [d for d in reply.get("mismatch", []) if isinstance(d, str) and d in by_id]
    to = str(reply.get("to", ""))[:4096]
    for rid, why in reply.get("failed", []) if isinstance(reply.get("failed"), list) else []:
        failed.append([str(rid)[:64], str(why)[:500]])
    exported = [Exported(f["id"], f["file"], f["sha256"], int(f["size"]), f["source"])
                for f in files if f["id"] in done_ids]  # fmt: skip
    with ctx.ledger.tx() as conn:
        for rid in bad_ids:
            where = by_id[rid]["source"]
            integrity.report_violation(conn, rid, where)
            failed.append([rid, f"the {where} copy does not match its SHA-256; not exported"])
        if exported:
            entries = [(e.recording_id, {"export": reply["export"], "request": req,
                                       "operator": op.officer_id, "via": "cli",
                                       "reason": reason, "to": to, "file": e.file,
                                       "source": e.source, "sha256": e.sha256})
                     for e in exported]  # fmt: skip
            exported_event.record_exported(conn, entries, op.officer_id)  # actor: the officer
            custody.checkpoint(conn, ctx.key, ctx.station_id, ctx.sm2)
    manifest = _manifest(server, op, exported, asked, reply["export"]) if exported else None
    failures = [{"id": rid, "reason": why} for rid, why in failed]  # as `export --json` has it
    return {"manifest": manifest, "exported": [vars(e) for e in exported], "failed": failures}


def _manifest(
    server: Server, op: Operator, exported: list[Exported], asked: tuple[str, str], export_id: str
) -> dict[str, Any]:
    ctx = server.ctx
    conn = ctx.ledger.connect()
    reason, req = asked
    exporter = Exporter(ctx)
    body: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "export": export_id,
        "station": ctx.station_id,
        "operator": op.officer_id,
        "operator_name": op.name,
        "cert_no": op.cert_no,
        "reason": reason,
        "exported_at": clock.iso(clock.now()),
        "hash_alg": "sha256",
        "recordings": [exporter._item(conn, e) for e in exported],
        "checkpoint": custody.latest_checkpoint(conn),
        # 调阅: who asked, why, and who approved (null: no approval was needed)
        "request": retrieval.manifest_part(
            retrieval.get(conn, req), gate.known_operators(ctx.ledger)
        ),
    }
    body["key_fingerprint"] = stationkey.fingerprint(ctx.key.public_key())
    sm2manifest.sign(ctx, body)  # crypto.suite = "sm"
    body["signature"] = ctx.key.sign(custody.canonical(body).encode("utf-8")).hex()
    return body
