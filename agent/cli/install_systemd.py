"""`evidence-agent install-systemd`: render and install the unit, tmpfiles and udev templates.

The canonical templates live in the repository's `systemd/`; copies ship inside the package
(`agent/defaults/systemd/`) so an installed wheel can install itself. Placeholders are
`@NAME@`; rendering refuses a template that still names one without a value, so a typo never
reaches /etc as a literal `@DATADIR@`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from agent.cli.systemd_paths import configured_paths, hidden_warnings, writable_paths
from agent.cli.udev_rules import UsbId, match_lines, recorder_ids, unknown_line
from agent.config.crypto import CREDENTIAL_NAME, CREDSTORE_DIR

# Template file name -> where it goes, relative to the destination root.
TARGETS = {
    "evidence-agent.service": "etc/systemd/system/evidence-agent.service",
    # Admin-local install: /etc, where Debian expects local configuration (a package would
    # put these under /usr/lib, and /etc overrides it by name).
    "evidence-agent.tmpfiles": "etc/tmpfiles.d/evidence-agent.conf",
    "99-evidence-recorder.rules": "etc/udev/rules.d/99-evidence-recorder.rules",
}
DEFAULT_CONFIG = Path("/etc/evidence-agent/agent.toml")
DEFAULT_DATA_DIR = Path("/var/lib/evidence-agent")
DEFAULT_MOUNT_ROOT = Path("/media/evidence")
DEFAULT_USER = "evidence"
SCRIPT = "evidence-agent"

_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
# Values land unquoted in space-separated unit settings and udev RUN lines, where whitespace,
# quotes, `%` (systemd specifiers), `$` (udev substitutions) and `\` change the meaning.
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]*$")
_SAFE_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# ProtectHome=yes hides these from the service, so a script installed there cannot start.
_HIDDEN_BY_PROTECT_HOME = (Path("/home"), Path("/root"), Path("/run/user"))


def render(template_text: str, values: dict[str, str]) -> str:
    """Replace every `@NAME@` in `template_text`; raise ValueError if a name has no value."""
    missing = sorted({name for name in _PLACEHOLDER.findall(template_text) if name not in values})
    if missing:
        raise ValueError("no value for placeholder(s): " + ", ".join(f"@{m}@" for m in missing))
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template_text)


def default_bindir() -> Path:
    """Directory of the `evidence-agent` script the unit should run.

    The running script wins over PATH: `sudo` resets PATH, and the copy being run is the one
    the operator means to install. Without either, the interpreter's bin dir is where pip puts
    console scripts.
    """
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == SCRIPT and argv0.exists():
        return Path(os.path.abspath(argv0)).parent
    found = shutil.which(SCRIPT)
    if found:
        return Path(os.path.abspath(found)).parent
    return Path(os.path.abspath(sys.executable)).parent


def _check_path(what: str, path: Path) -> str:
    text = str(path)
    if not _SAFE_PATH.match(text):
        raise ValueError(
            f"{what} {text!r} must be an absolute path of letters, digits and . _ + - / "
            "(no spaces, quotes, % or $: it is written unquoted into unit and udev files)"
        )
    return text


def default_values(
    config_path: str | Path,
    data_dir: str | Path,
    mount_root: str | Path,
    user: str,
    rw: bool,
    *,
    bindir: str | Path | None = None,
    rw_paths: list[Path] | None = None,
    recorders: list[UsbId] | None = None,
    accept_unknown_usb: bool = False,
    sealed_key: bool = False,
) -> dict[str, str]:
    """Placeholder values for the templates; raise ValueError naming any unusable value."""
    if not _SAFE_USER.match(user):
        raise ValueError(f"user {user!r} is not a valid system user name")
    writable = rw_paths or writable_paths(Path(data_dir), [Path(mount_root)], {})
    ids = recorders if recorders is not None else recorder_ids({}, Path("/"))
    return {
        "RWPATHS": " ".join(_check_path("writable path", p) for p in writable),
        "RECORDER_MATCH": match_lines(ids),
        "UNKNOWN_USB": unknown_line(accept_unknown_usb),
        "BINDIR": _check_path("bin dir", Path(bindir) if bindir else default_bindir()),
        "CONFIG": _check_path("config", Path(os.path.abspath(config_path))),
        "DATADIR": _check_path("station.data_dir", Path(data_dir)),
        "MOUNTROOT": _check_path("mount root", Path(mount_root)),
        "USER": user,
        "MOUNTMODE": "rw" if rw else "ro",
        "KEY_CREDENTIAL": key_credential_line(sealed_key),
    }


def key_credential_line(sealed: bool) -> str:
    """The unit line that hands the sealed station key to the service (agent.station.syscreds)."""
    line = f"LoadCredentialEncrypted={CREDENTIAL_NAME}:{CREDSTORE_DIR / CREDENTIAL_NAME}"
    return line if sealed else f"#{line}"


def template_text(name: str) -> str:
    """The packaged copy of template `name` (one of TARGETS)."""
    return (resources.files("agent") / "defaults" / "systemd" / name).read_text(encoding="utf-8")


def rendered_files(values: dict[str, str]) -> dict[str, str]:
    """Relative target path -> rendered content, for every template."""
    return {target: render(template_text(name), values) for name, target in TARGETS.items()}


def install(dest_root: Path, values: dict[str, str], dry_run: bool) -> list[Path]:
    """Write the rendered files under `dest_root`; return their paths (nothing written if dry)."""
    written = []
    for rel, text in rendered_files(values).items():
        path = Path(dest_root) / rel
        if not dry_run:
            _write_atomic(path, text)
        written.append(path)
    return written


def _write_atomic(path: Path, text: str) -> None:
    # udev and systemd may read these at any moment (inotify on rules.d): never half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _config_hints(config: Path) -> dict[str, Any]:
    """Keys of the config file that shape the unit, as written in the file (no env overrides:
    the service will not see the installer's environment). Missing file: no hints."""
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read {config}: {exc} (run check-config)") from None

    def path(value: Any) -> Path | None:
        # Relative paths in the config are relative to the file, as agent.config.loader treats them.
        return None if not isinstance(value, str) else config.parent / value

    def section(name: str) -> dict[str, Any]:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    roots = section("detect").get("mount_roots")
    return {
        "data_dir": path(section("station").get("data_dir")),
        "mount_roots": [p for p in map(path, roots) if p] if isinstance(roots, list) else None,
        "release_after": section("ingest").get("release_after"),
        "paths": configured_paths(data, config.parent),
        "accept_unknown_usb": section("detect").get("accept_unknown_usb") is True,
        "recorders": recorder_ids(data, config.parent),
        "key_file": section("crypto").get("key_file"),
    }


def _sealed_key(args: argparse.Namespace, hints: dict[str, Any]) -> bool:
    """--sealed-key, or the sealed station key exists under --dest (the installed system)."""
    dest = Path(getattr(args, "dest", None) or "/")
    found = (dest / CREDSTORE_DIR.relative_to("/") / CREDENTIAL_NAME).is_file()
    sealed = bool(getattr(args, "sealed_key", False)) or found
    if sealed and hints.get("key_file"):
        raise ValueError(
            "crypto.key_file is set in the config, so the daemon would read that file instead "
            "of the sealed credential: remove crypto.key_file, then run install-systemd again"
        )
    return sealed


def _warnings(values: dict[str, str], hints: dict[str, Any], rw: bool) -> list[str]:
    out = []
    release = hints.get("release_after") or "archived"  # agent.config.loader's default
    if release != "never" and not rw:
        out.append(
            f"ingest.release_after is {release!r}: recorder volumes will be mounted read-only, "
            "so nothing can be erased from recorders; install with --rw to allow releases"
        )
    if release == "never" and rw:
        out.append("ingest.release_after is 'never' but --rw given: volumes will be writable")
    roots = hints.get("mount_roots") or []
    if len(roots) > 1:
        out.append(f"only {values['MOUNTROOT']} gets udev mounts (first of detect.mount_roots)")
    out += hidden_warnings(hints.get("paths") or {})
    bindir = Path(values["BINDIR"])
    if not (bindir / SCRIPT).exists():
        out.append(f"{bindir / SCRIPT} does not exist; the unit will fail to start")
    if any(bindir.is_relative_to(p) for p in _HIDDEN_BY_PROTECT_HOME):
        out.append(f"{bindir} is hidden by ProtectHome=yes; install the agent outside /home")
    return out


def _next_steps(values: dict[str, str]) -> str:
    user, data = values["USER"], values["DATADIR"]
    return "\n".join(
        [
            "next steps (as root):",
            f"  id {user} || useradd --system --user-group --home-dir {data} "
            f"--shell /usr/sbin/nologin {user}",
            "  # LoadCredential= refuses to start the unit without this file (empty is fine):",
            "  test -e /etc/evidence-agent/credentials || "
            "install -D -m 0600 /dev/null /etc/evidence-agent/credentials",
            "  # keys off the disk: evidence-agent keys encryption init --systemd-creds, then"
            " install-systemd again (LoadCredentialEncrypted=)"
            if values["KEY_CREDENTIAL"].startswith("#")
            else "  # the station key is loaded sealed (LoadCredentialEncrypted=)",
            "  systemd-tmpfiles --create evidence-agent.conf",
            "  udevadm control --reload",
            "  systemctl daemon-reload && systemctl enable --now evidence-agent",
        ]
    )


def cli_install(args: argparse.Namespace) -> int:
    """`install-systemd [--dest DIR] [--dry-run] [--rw] [--user U] [--config FILE]`.

    Render the service unit, tmpfiles entry and udev mount rule for this installation and
    write them under `--dest` (default `/`): `etc/systemd/system/evidence-agent.service`,
    `usr/lib/tmpfiles.d/evidence-agent.conf`, `etc/udev/rules.d/99-evidence-recorder.rules`.
    Data dir and mount root come from `args.data_dir` / `args.mount_root`, else from the
    config file (`station.data_dir`, first of `detect.mount_roots`), else the FHS defaults.
    `--rw` mounts recorder volumes read-write: needed when `ingest.release_after` is not
    `never`. `--sealed-key` (or the sealed station key existing under `--dest`) writes
    `LoadCredentialEncrypted=` for it. `--dry-run` prints the files instead of writing them.
    Exit 0; 64 (EX_USAGE) when a value is unusable (or crypto.key_file is set beside a sealed
    key); 73 (EX_CANTCREAT) when a file cannot be written.
    """
    config = Path(os.path.abspath(getattr(args, "config", None) or DEFAULT_CONFIG))
    rw = bool(getattr(args, "rw", False))
    try:
        hints = _config_hints(config)
        roots = hints.get("mount_roots") or [DEFAULT_MOUNT_ROOT]
        mount_root = Path(getattr(args, "mount_root", None) or roots[0])
        data_dir = Path(
            getattr(args, "data_dir", None) or hints.get("data_dir") or DEFAULT_DATA_DIR
        )
        values = default_values(
            config,
            data_dir,
            mount_root,
            getattr(args, "user", None) or DEFAULT_USER,
            rw,
            rw_paths=writable_paths(data_dir, [mount_root, *roots[1:]], hints.get("paths") or {}),
            recorders=hints.get("recorders"),
            accept_unknown_usb=bool(hints.get("accept_unknown_usb")),
            sealed_key=_sealed_key(args, hints),
        )
    except ValueError as exc:
        print(f"install-systemd: {exc}", file=sys.stderr)
        return 64
    for warning in _warnings(values, hints, rw):
        print(f"install-systemd: warning: {warning}", file=sys.stderr)
    dest = Path(getattr(args, "dest", None) or "/")
    dry_run = bool(getattr(args, "dry_run", False))
    if dry_run:
        for rel, text in rendered_files(values).items():
            print(f"# --- {dest / rel}\n{text}")
        return 0
    try:
        paths = install(dest, values, dry_run=False)
    except OSError as exc:
        print(f"install-systemd: cannot write under {dest}: {exc}", file=sys.stderr)
        return 73  # EX_CANTCREAT
    for path in paths:
        print(f"wrote {path}")
    print(_next_steps(values))
    return 0
