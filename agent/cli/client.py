"""The CLI's side of the daemon's gate (agent.daemon.api): one request per connection.

Gated commands (tag, accept, reject, export, audit, interview start/stop/mark) have no code
path here that opens the ledger: they send the request and print what the daemon answers.
Exports are written by this process, running as the operator, from the read-only
descriptors the daemon hands over.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from agent.access import wire
from agent.actions.safeexport import (
    ExportDir,
    ExportInterrupted,
    ExportTargetError,
    signals_abort,
    write_manifest,
)
from agent.config.loader import AgentConfig
from agent.core import crashpoint
from agent.core.errors import AgentError

EX_UNAVAILABLE = 69


class GateError(AgentError):
    """The daemon refused or failed the request; exit code as the daemon said."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _connect(cfg: AgentConfig) -> socket.socket:
    path = cfg.api.socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise GateError(
            f"cannot reach the daemon's gate at {path} (api.socket): {exc.strerror}; "
            "is `evidence-agent run` running, and are you in its group (api.group)?",
            EX_UNAVAILABLE,
        ) from None
    return sock


def _answer(doc: dict[str, Any]) -> Any:
    if not doc.get("ok"):
        raise GateError(str(doc.get("error")), int(doc.get("exit", 1)))
    return doc.get("result")


def call(cfg: AgentConfig, verb: str, params: dict[str, Any]) -> Any:
    with _connect(cfg) as sock:
        wire.send(sock, {"verb": verb, "params": params})
        doc, fds = wire.recv(sock)
        for fd in fds:
            os.close(fd)
    return _answer(doc)


def _write_all(
    target: ExportDir, files: list[dict[str, Any]], fds: list[int]
) -> dict[str, list[Any]]:
    """Write each passed descriptor into the target as this (the operator's) process.

    Writes go through ExportDir: relative to a directory fd, never through a symlink, never
    over an existing file, owner-only; a copy whose SHA-256 differs is not kept.
    """
    out: dict[str, list[Any]] = {"done": [], "mismatch": [], "failed": []}
    for item, fd in zip(files, fds, strict=False):
        name = Path(str(item["file"])).name
        try:
            with os.fdopen(fd, "rb") as src:
                got = target.write_verified(name, src, str(item["sha256"]))
            (out["done"] if got == item["sha256"] else out["mismatch"]).append(item["id"])
            crashpoint.hit("export.after_file")
        except (ExportTargetError, OSError) as exc:
            out["failed"].append([item["id"], str(exc)])
    return out


def _write_manifest(target: ExportDir, result: dict[str, Any]) -> None:
    """The signed manifest the daemon returned, and `SHA256SUMS`, both new files only."""
    manifest = result.get("manifest")
    if not manifest:
        return
    stamp = "".join(c for c in str(manifest["exported_at"])[:26] if c.isdigit() or c == "T")
    files = [(str(r["sha256"]), str(r["file"])) for r in manifest.get("recordings", [])]
    result["manifest"] = str(write_manifest(target, stamp, manifest, files))


def export(cfg: AgentConfig, params: dict[str, Any], to: Path) -> dict[str, Any]:
    """Ask the daemon to export; write what it hands over into `to` as the calling operator.

    SIGTERM/SIGINT while writing tell the daemon, which records `export.aborted` for what was
    not written; a SIGKILL leaves `export.started` alone (an unfinished export in `audit`).
    """
    target = ExportDir(to)
    try:
        params = {**params, "to": str(to.resolve())}
        with _connect(cfg) as sock:
            wire.send(sock, {"verb": "export", "params": params})
            doc, fds = wire.recv(sock)
            if "stage" not in doc:
                for fd in fds:
                    os.close(fd)
                return dict(_answer(doc))
            crashpoint.hit("export.after_started")  # the daemon has recorded export.started
            try:
                with signals_abort():
                    written = _write_all(target, doc.get("files", []), fds)
            except ExportInterrupted as exc:
                wire.send(sock, {"aborted": exc.signum, "to": str(to)})
                wire.recv(sock)
                raise
            wire.send(sock, {**written, "to": str(to)})
            final, _ = wire.recv(sock)
        result = dict(_answer(final))
        _write_manifest(target, result)
        return result
    finally:
        target.close()
