"""The operator register: a CSV like the roster (UTF-8, UTF-8 with BOM or GBK), read strictly.

Columns: officer_id, login, name, roles, cert_no (执法证号), active; optional console_keys
(console key fingerprints, `;`-separated) and pin_hash (the dock console's PIN hash). Unlike
the roster, a bad register is never replaced by an older one: gated actions fail closed
(agent.access.gate). Every error names the file, line and column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.access.consolekey import KEY_ID
from agent.rules.roster import RosterError, _read_text, parse_active

REQUIRED = ("officer_id", "login", "name", "roles", "cert_no", "active")
OPTIONAL = ("console_keys", "pin_hash")
ROLES = ("officer", "custodian", "supervisor", "admin")
_ROLE_WORDS = {
    "officer": "officer", "执法人员": "officer", "民警": "officer",
    "custodian": "custodian", "保管员": "custodian",
    "supervisor": "supervisor", "监督员": "supervisor",
    "admin": "admin", "管理员": "admin",
}  # fmt: skip
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_LOGIN = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")


class RegisterError(RosterError):
    """The operator register is unreadable or invalid; the message names file/line/column."""


@dataclass(frozen=True)
class Operator:
    officer_id: str
    login: str
    name: str
    roles: tuple[str, ...]
    cert_no: str
    active: bool
    console_keys: tuple[str, ...] = field(default=())
    pin_hash: str = ""

    def has(self, role: str) -> bool:
        return role in self.roles

    def public(self) -> dict[str, Any]:
        """What custody and the audit trail keep (never the PIN hash)."""
        doc = asdict(self)
        doc.pop("pin_hash")
        doc["roles"] = list(self.roles)
        doc["console_keys"] = list(self.console_keys)
        return doc


def parse_roles(text: str) -> tuple[str, ...]:
    words = [w for w in re.split(r"[;,|/\s、；，]+", text.strip()) if w]
    if not words:
        raise ValueError(f"no role given; roles are {', '.join(ROLES)} (separate with ;)")
    out: list[str] = []
    for w in words:
        role = _ROLE_WORDS.get(w.lower())
        if role is None:
            raise ValueError(f"role {w!r} is not one of {', '.join(ROLES)} (保管员/监督员/管理员)")
        if role not in out:
            out.append(role)
    return tuple(out)


def _header(path: Path, header: list[str]) -> None:
    for col in REQUIRED:
        if col not in header:
            raise RegisterError(f"{path}: line 1, column {col!r}: missing from the header")
    for col in header:
        if header.count(col) > 1:
            raise RegisterError(f"{path}: line 1, column {col!r}: appears twice in the header")
        if col not in REQUIRED + OPTIONAL:
            raise RegisterError(
                f"{path}: line 1, column {col!r}: unknown column; valid: "
                + ", ".join(REQUIRED + OPTIONAL)
            )


class _Line:
    def __init__(self, path: Path, line: int, values: dict[str, str]) -> None:
        self.path, self.line, self.values = path, line, values

    def error(self, column: str, problem: str) -> RegisterError:
        return RegisterError(f"{self.path}: line {self.line}, column {column!r}: {problem}")

    def get(self, column: str, pattern: re.Pattern[str] | None = None) -> str:
        value = self.values.get(column, "").strip()
        if not value:
            raise self.error(column, "empty; a value is required")
        if pattern is not None and not pattern.match(value):
            raise self.error(column, f"{value!r} is not a valid {column}")
        return value

    def operator(self) -> Operator:
        try:
            roles = parse_roles(self.values["roles"])
        except ValueError as exc:
            raise self.error("roles", str(exc)) from None
        try:
            active = parse_active(self.values["active"])
        except ValueError as exc:
            raise self.error("active", str(exc)) from None
        keys = tuple(k for k in re.split(r"[;\s]+", self.values.get("console_keys", "")) if k)
        for k in keys:
            if not KEY_ID.match(k):
                raise self.error(
                    "console_keys",
                    f"{k[:64]!r} is not a console key id (ed25519:...; printed by "
                    "`evidence-agent keys console-new`)",
                )
        return Operator(
            officer_id=self.get("officer_id", _ID),
            login=self.get("login", _LOGIN),
            name=self.get("name"),
            roles=roles,
            cert_no=self.get("cert_no"),
            active=active,
            console_keys=keys,
            pin_hash=self.values.get("pin_hash", "").strip(),
        )


def load_register(path: str | Path) -> tuple[list[Operator], str]:
    """Read the register; returns (operators, SHA-256 of the file's bytes)."""
    path = Path(path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise RegisterError(f"{path}: cannot read: {exc.strerror} (operators.file)") from exc
    try:
        text = _read_text(path)
    except RosterError as exc:
        raise RegisterError(str(exc)) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RegisterError(f"{path}: empty file; expected header {','.join(REQUIRED)}") from None
    _header(path, header)
    operators: list[Operator] = []
    seen: dict[str, int] = {}
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise RegisterError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields, the header has "
                    f"{len(header)}"
                )
            line = _Line(path, reader.line_num, dict(zip(header, fields, strict=True)))
            op = line.operator()
            names = [("officer_id", op.officer_id), ("login", "login:" + op.login)]
            names += [("console_keys", "key:" + k) for k in op.console_keys]
            for col, key in names:
                if key in seen:
                    raise line.error(col, f"{key!r} already on line {seen[key]}")
                seen[key] = reader.line_num
            operators.append(op)
    except csv.Error as exc:
        raise RegisterError(f"{path}: line {reader.line_num}: {exc}") from None
    return operators, digest
