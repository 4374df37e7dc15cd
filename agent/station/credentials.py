"""Secrets (device admin passwords, MQTT password, S3 keys): never in the TOML.

Looked up, in order:
1. `$CREDENTIALS_DIRECTORY/<name>`: one file per secret, as systemd's `LoadCredential=` /
   `SetCredentialEncrypted=` hand them to the service (the whole file is the value, one
   trailing newline stripped);
2. `$CREDENTIALS_DIRECTORY/evidence-agent`: a KEY=VALUE file;
3. `credentials.file` from the config: a KEY=VALUE file (mode 0600).

KEY=VALUE files: one `KEY=VALUE` per line, `#` comments and blank lines allowed, keys are
case-sensitive, the value is everything after the first `=` (surrounding whitespace and one
pair of matching quotes stripped). Files are re-read on every lookup, so a changed password
takes effect without a restart. Values are never logged.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from agent.core.errors import CredentialsError

logger = logging.getLogger(__name__)

ENV_DIR = "CREDENTIALS_DIRECTORY"
BUNDLE_NAME = "evidence-agent"
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_BYTES = 64 * 1024


def parse(text: str, source: str) -> dict[str, str]:
    """KEY=VALUE lines → dict; a malformed line is an error naming file and line."""
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            raise CredentialsError(
                f"{source}: line {n}: expected KEY=VALUE (key of letters, digits, _ . -)"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


_warned: set[Path] = set()


def _read(path: Path) -> str:
    """The file's text; FileNotFoundError passes through (callers word it for their source)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials {path}: {exc}") from None
    if st.st_size > MAX_BYTES:
        raise CredentialsError(f"credentials {path} is larger than {MAX_BYTES} bytes")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and path not in _warned:
        # Readable by others: still used (refusing would stop ingest), but said once, loudly.
        _warned.add(path)
        logger.warning("credentials %s is accessible by group/others; chmod 600 it", path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials {path}: {exc}") from None


class Credentials:
    """Looks secrets up by name; see the module docstring for where."""

    def __init__(self, file: Path | None, environ: dict[str, str] | None = None) -> None:
        self.file = file
        self._environ = environ

    def _dir(self) -> Path | None:
        env = os.environ if self._environ is None else self._environ
        raw = env.get(ENV_DIR)
        return Path(raw) if raw else None

    def sources(self) -> list[str]:
        """Where secrets are looked up, for error messages."""
        out = []
        d = self._dir()
        if d is not None:
            out += [f"{d}/<name>", f"{d}/{BUNDLE_NAME}"]
        if self.file is not None:
            out.append(str(self.file))
        return out

    def get(self, name: str) -> str | None:
        d = self._dir()
        if d is not None:
            single = d / name
            if _KEY_RE.match(name) and single.is_file():
                text = _read(single)
                return text[:-1] if text.endswith("\n") else text
            bundle = d / BUNDLE_NAME
            if bundle.is_file():
                found = parse(_read(bundle), str(bundle)).get(name)
                if found is not None:
                    return found
        if self.file is not None:
            try:
                text = _read(self.file)
            except FileNotFoundError:
                raise CredentialsError(
                    f"credentials.file {self.file} does not exist (create it, mode 0600, "
                    "with KEY=VALUE lines, or unset credentials.file)"
                ) from None
            return parse(text, str(self.file)).get(name)
        return None

    def require(self, name: str, purpose: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            where = ", ".join(self.sources()) or (
                "nowhere: set credentials.file or run under systemd with LoadCredential="
            )
            raise CredentialsError(f"secret {name!r} ({purpose}) is not set; looked in {where}")
        return value
