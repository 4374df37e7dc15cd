"""`keys encryption rotate|recover` when the station key is sealed with systemd-creds.

The key ring lives in the sealed credential (agent.station.syscreds), never in a key file.
As root, the ring is decrypted in memory; rotate seals [new, old] back into the same
credential (temp → fsync → rename, read back before going on), exactly as the key-file path
keeps the old key in the file until every data key is re-wrapped; recover seals a new key when
the credential is lost. The re-wrapping itself (agent.actions.rekey, custody events as for a
key file) runs in a child process that has dropped to the data dir's owner, so the ledger and
the copies keep their owner; only when it re-wrapped every copy does the parent, still root,
seal the new key alone. No plaintext key file is written at any point.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config.crypto import CREDENTIAL_NAME
from agent.config.loader import AgentConfig
from agent.core.errors import AgentError, EnvelopeKeyError


def _credstore(args: argparse.Namespace) -> Path | None:
    store = getattr(args, "credstore", None)
    return Path(store) if store else None


def _in_credentials_dir(path: Path) -> bool:
    """Whether `path` is the credential PID 1 decrypted for the unit (read-only, in memory)."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return bool(creds) and path.name == CREDENTIAL_NAME and path.parent == Path(str(creds))


def wanted(cfg: AgentConfig, args: argparse.Namespace) -> bool:
    """Whether rotate/recover work on the sealed credential rather than a key file."""
    from agent.station import kek, syscreds

    if getattr(args, "systemd_creds", False):
        return True
    path = kek.key_path(cfg)
    if _in_credentials_dir(path):
        return True
    return not path.exists() and syscreds.sealed_present(_credstore(args))


def _load(dest: Path) -> list[bytes]:
    from agent.station import kek, syscreds

    return kek.parse_ring(syscreds.unseal(dest).decode("ascii"), dest)


def _save(dest: Path, ring: list[bytes]) -> None:
    """Seal `ring` into `dest` (replaced durably) and check it decrypts to the same keys."""
    from agent.station import kek, syscreds

    syscreds.seal(kek.ring_text(ring).encode("ascii"), dest)
    if _load(dest) != ring:
        raise EnvelopeKeyError(f"{dest} does not decrypt to the keys just sealed; run it again")


def _check(cfg: AgentConfig, action: str, dest: Path) -> None:
    from agent.station import kek

    if os.geteuid() != 0:
        raise EnvelopeKeyError(
            f"the station key is sealed in {dest}: `keys encryption {action}` must run as root "
            "(sudo) to open it and seal the new key with systemd-creds"
        )
    plain = kek.key_path(cfg, environ={})
    if os.path.lexists(plain):
        raise EnvelopeKeyError(
            f"there is a plaintext key file {plain}: rotate/recover work on it; seal it first "
            "(`keys encryption init --systemd-creds`) or run without --systemd-creds"
        )


def _ring(action: str, dest: Path) -> list[bytes]:
    """The ring to re-wrap with, sealed before any copy is touched."""
    if action == "rotate":
        if not dest.exists():
            raise EnvelopeKeyError(
                f"no sealed station key {dest}: restore it, or run `keys encryption recover "
                "--systemd-creds --recovery-key FILE` (docs/security.md)"
            )
        ring = _load(dest)
        if len(ring) == 1:  # a new key first, the old one kept until every copy is re-wrapped
            ring = [os.urandom(32), *ring]
            _save(dest, ring)
        return ring
    if not dest.exists():
        ring = [os.urandom(32)]
        _save(dest, ring)
        return ring
    try:
        return _load(dest)
    except EnvelopeKeyError as exc:
        raise EnvelopeKeyError(
            f"{exc}. If this machine's TPM2 or host key changed, move {dest} away (keep it) "
            "and run recover again: a new station key is sealed in its place"
        ) from None


def run(
    cfg: AgentConfig,
    args: argparse.Namespace,
    rotate: Callable[..., int],
    recover: Callable[..., int],
) -> int:
    """rotate/recover with the ring in the sealed credential; the exit code of the command.
    `rotate`/`recover` re-wrap the copies (agent.cli.keys_crypto, as for a key file)."""
    from agent.station import kek, syscreds

    action = args.action
    dest = syscreds.credential_path(_credstore(args))
    _check(cfg, action, dest)
    recovery: Any = None
    if action == "recover":
        if not args.recovery_key:
            raise EnvelopeKeyError("keys encryption recover needs --recovery-key FILE")
        recovery = kek.load_recovery_private(Path(args.recovery_key))  # may be root's only
    _refuse_if_running(cfg)  # before sealing anything: the daemon holds the key it seals with
    ring = _ring(action, dest)

    def rewrap() -> int:
        from agent.station.ownership import DaemonLock, require_owner

        require_owner(cfg.station.data_dir, f"keys encryption {action}")
        lock = DaemonLock(cfg.locks_dir, cfg.station.data_dir)
        lock.acquire()
        try:
            if action == "rotate":
                return rotate(cfg, ring, dest)
            return recover(cfg, ring, recovery, dest)
        finally:
            lock.release()

    code = _as_child(rewrap)
    if code == 0:
        if len(ring) > 1:
            _save(dest, [ring[0]])  # every copy opens with the new key: drop the old
        print(f"station key sealed in {dest}; restart the service to load it")
    return code


def _refuse_if_running(cfg: AgentConfig) -> None:
    """Exit 75 naming the daemon when one holds the data dir's lock. Only looks: root must not
    create the lock file (the daemon, as the owner, opens it read-write); the child takes the
    lock itself once it is the owner."""
    import fcntl

    from agent.core.errors import AlreadyRunningError
    from agent.station.ownership import LOCK_NAME

    path = cfg.locks_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        raise AlreadyRunningError(
            f"an evidence-agent daemon (pid {holder}) runs on {cfg.station.data_dir} (it holds "
            f"{path}): stop it first (systemctl stop evidence-agent); nothing was sealed"
        ) from None
    finally:
        os.close(fd)


def _as_child(fn: Callable[[], int]) -> int:
    """Run `fn` in a forked child (it may drop root for good); its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's lines reach the tests through its output
        code = 70
        try:
            code = fn()
        except AgentError as exc:
            print(f"evidence-agent: {exc}", file=sys.stderr)
            code = exc.exit_code
        except BaseException:
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
