"""The CLI's side of the daemon's gate (agent.daemon.api): one request per connection.

Gated commands (tag, accept, reject, export, audit, interview start/stop/mark) have no code
path here that opens the ledger: they send the request and print what the daemon answers.
Exports are written by this process, running as the operator, from the read-only
descriptors the daemon hands over.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from agent.access import wire
from agent.config.loader import AgentConfig
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


def _write(fd: int, dest: Path, sha256: str) -> bool:
    """Copy a descriptor to `dest` via a temp name, hashing; keep it only if it matches."""
    if dest.exists():
        os.close(fd)
        raise FileExistsError(f"{dest} already exists; export into an empty directory")
    tmp = dest.with_name(f".{dest.name}.partial")
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as src, open(tmp, "xb") as out:
        while data := src.read(4 << 20):
            h.update(data)
            out.write(data)
        out.flush()
        os.fsync(out.fileno())
    if h.hexdigest() != sha256:
        tmp.unlink()
        return False
    os.chmod(tmp, 0o444)
    os.rename(tmp, dest)
    return True


def export(cfg: AgentConfig, params: dict[str, Any], to: Path) -> dict[str, Any]:
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentError(f"cannot create export directory {to}: {exc.strerror}") from exc
    params = {**params, "to": str(to.resolve())}
    with _connect(cfg) as sock:
        wire.send(sock, {"verb": "export", "params": params})
        doc, fds = wire.recv(sock)
        if "stage" not in doc:
            for fd in fds:
                os.close(fd)
            return dict(_answer(doc))
        files = doc.get("files", [])
        done: list[str] = []
        mismatch: list[str] = []
        failed: list[list[str]] = []
        for item, fd in zip(files, fds, strict=False):
            dest = to / Path(str(item["file"])).name
            try:
                (done if _write(fd, dest, item["sha256"]) else mismatch).append(item["id"])
            except FileExistsError as exc:
                failed.append([item["id"], str(exc)])
            except OSError as exc:
                failed.append([item["id"], f"{dest}: {exc.strerror}"])
        wire.send(sock, {"done": done, "mismatch": mismatch, "failed": failed, "to": str(to)})
        final, _ = wire.recv(sock)
    result = dict(_answer(final))
    manifest = result.get("manifest")
    if manifest:
        stamp = "".join(c for c in str(manifest["exported_at"])[:26] if c.isdigit() or c == "T")
        path = to / f"manifest-{stamp}.json"
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.rename(tmp, path)
        result["manifest"] = str(path)
    return result
