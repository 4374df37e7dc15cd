"""Officer roster and recorder inventory: CSV loading and the last-good cache.

Both files are usually exported from a spreadsheet or an HR/equipment system, so they arrive
as UTF-8, UTF-8 with BOM (Excel) or GBK (Chinese Windows). A bad file never takes the agent
down: `RosterCache` keeps the previous good data in force and reports what is wrong, naming
the file, line and column.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from agent.core.errors import AgentError

__all__ = [
    "InventoryItem",
    "InventoryStatus",
    "Officer",
    "RosterCache",
    "RosterError",
    "load_inventory",
    "load_roster",
    "parse_active",
    "parse_status",
]

logger = logging.getLogger(__name__)

ROSTER_COLUMNS = ("officer_id", "name", "unit_id", "unit_name", "active")
INVENTORY_COLUMNS = ("vendor", "serial", "unit_id", "officer_id", "status", "note")

# Unit ids and serials end up in MQTT topics (DESIGN: ids in topics match this).
_TOPIC_ID = re.compile(r"^[A-Za-z0-9_.-]+$")

T = TypeVar("T")


class RosterError(AgentError, ValueError):
    """A roster or inventory file is unreadable or invalid; the message names file/line/column."""


class InventoryStatus(StrEnum):
    IN_SERVICE = "in_service"
    REPAIR = "repair"
    RETIRED = "retired"
    LOST = "lost"


_STATUS_WORDS = {
    "in_service": InventoryStatus.IN_SERVICE,
    "在用": InventoryStatus.IN_SERVICE,
    "repair": InventoryStatus.REPAIR,
    "维修": InventoryStatus.REPAIR,
    "retired": InventoryStatus.RETIRED,
    "报废": InventoryStatus.RETIRED,
    "lost": InventoryStatus.LOST,
    "丢失": InventoryStatus.LOST,
}
_ACTIVE_WORDS = {
    "1": True, "yes": True, "true": True, "是": True,
    "0": False, "no": False, "false": False, "否": False,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Officer:
    officer_id: str
    name: str
    unit_id: str
    unit_name: str
    active: bool


@dataclass(frozen=True, slots=True)
class InventoryItem:
    vendor: str
    serial: str
    unit_id: str
    officer_id: str | None  # None: a pool recorder not assigned to one officer
    status: InventoryStatus
    note: str


def parse_status(text: str) -> InventoryStatus:
    """in_service/repair/retired/lost or 在用/维修/报废/丢失; ValueError otherwise."""
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _STATUS_WORDS:
        raise ValueError(
            f"status {text!r} is not one of in_service, repair, retired, lost (在用/维修/报废/丢失)"
        )
    return _STATUS_WORDS[key]


def parse_active(text: str) -> bool:
    """1/0, yes/no, true/false, 是/否 (case-insensitive); ValueError otherwise."""
    key = text.strip().lower()
    if key not in _ACTIVE_WORDS:
        raise ValueError(f"active flag {text!r} is not one of 1/0, yes/no, true/false, 是/否")
    return _ACTIVE_WORDS[key]


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: cannot read: {exc.strerror}") from exc
    # utf-8-sig also strips Excel's BOM; gb18030 is a superset of GBK and GB2312, and almost
    # no GBK text is valid UTF-8, so trying UTF-8 first cannot misread a GBK file.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError(f"{path}: not UTF-8 or GBK text; save it as UTF-8 CSV")


class _Row:
    """One data row with what an error message needs: file, line, column."""

    def __init__(self, path: Path, line: int, values: dict[str, str]) -> None:
        self.path, self.line, self.values = path, line, values

    def error(self, column: str, problem: str) -> RosterError:
        return RosterError(f"{self.path}: line {self.line}, column {column!r}: {problem}")

    def text(self, column: str) -> str:
        return self.values[column].strip()

    def required(self, column: str, topic_safe: bool = False) -> str:
        value = self.text(column)
        if not value:
            raise self.error(column, "empty; a value is required")
        if topic_safe and not _TOPIC_ID.match(value):
            raise self.error(column, f"{value!r} may contain only A-Z a-z 0-9 _ . -")
        return value

    def parsed(self, column: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(self.values[column])
        except ValueError as exc:
            raise self.error(column, str(exc)) from None


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RosterError(f"{path}: empty file; expected header {','.join(columns)}") from None
    except csv.Error as exc:
        raise RosterError(f"{path}: line 1: {exc}") from None
    for col in columns:
        if col not in header:
            raise RosterError(f"{path}: line 1, column {col!r}: missing from the header")
    for col in header:
        if header.count(col) > 1:
            raise RosterError(f"{path}: line 1, column {col!r}: appears twice in the header")
    extra = [h for h in header if h not in columns]
    if extra:
        # Exports often carry more columns; ignore them, but not silently.
        logger.warning("%s: ignoring columns %s", path, ", ".join(extra))
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line, e.g. the trailing one a spreadsheet writes
            if len(fields) != len(header):
                col = header[len(fields)] if len(fields) < len(header) else "(extra)"
                raise RosterError(
                    f"{path}: line {reader.line_num}, column {col!r}: "
                    f"{len(fields)} fields, the header has {len(header)}"
                )
            yield _Row(path, reader.line_num, dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        raise RosterError(f"{path}: line {reader.line_num}: {exc}") from None


def load_roster(path: str | Path) -> list[Officer]:
    """Read the roster CSV (officer_id,name,unit_id,unit_name,active)."""
    path = Path(path)
    officers: list[Officer] = []
    first_line: dict[str, int] = {}
    for row in _rows(path, ROSTER_COLUMNS):
        officer_id = row.required("officer_id")
        if officer_id in first_line:
            raise row.error(
                "officer_id", f"{officer_id!r} already on line {first_line[officer_id]}"
            )
        first_line[officer_id] = row.line
        officers.append(
            Officer(
                officer_id=officer_id,
                name=row.text("name"),
                unit_id=row.required("unit_id", topic_safe=True),
                unit_name=row.text("unit_name"),
                active=row.parsed("active", parse_active),
            )
        )
    return officers


def load_inventory(path: str | Path) -> list[InventoryItem]:
    """Read the inventory CSV (vendor,serial,unit_id,officer_id,status,note)."""
    path = Path(path)
    items: list[InventoryItem] = []
    first_line: dict[tuple[str, str], int] = {}
    for row in _rows(path, INVENTORY_COLUMNS):
        key = (row.required("vendor"), row.required("serial", topic_safe=True))
        if key in first_line:
            raise row.error(
                "serial", f"recorder {key[0]}/{key[1]} already on line {first_line[key]}"
            )
        first_line[key] = row.line
        items.append(
            InventoryItem(
                vendor=key[0],
                serial=key[1],
                unit_id=row.required("unit_id", topic_safe=True),
                officer_id=row.text("officer_id") or None,
                status=row.parsed("status", parse_status),
                note=row.text("note"),
            )
        )
    return items


class RosterCache:
    """The last good roster and inventory; a failed reload keeps the previous data in force.

    The two files are independent: a broken inventory does not block a roster update. Before
    the first good load, `officers` is empty and `inventory` is None (the caller decides
    what "configured but never loaded" means, e.g. quarantine instead of accept-all).
    """

    def __init__(self, roster_file: Path | None, inventory_file: Path | None = None) -> None:
        self.roster_file = roster_file
        self.inventory_file = inventory_file
        self._officers: tuple[Officer, ...] = ()
        self._inventory: dict[tuple[str, str], InventoryItem] | None = None
        self._lock = threading.Lock()  # one reload at a time; readers see whole snapshots
        self.roster_error: str | None = None  # the last reload's problem, per file
        self.inventory_error: str | None = None

    @property
    def officers(self) -> tuple[Officer, ...]:
        return self._officers

    @property
    def inventory(self) -> tuple[InventoryItem, ...] | None:
        inv = self._inventory
        return None if inv is None else tuple(inv.values())

    def inventory_item(self, vendor: str, serial: str) -> InventoryItem | None:
        """The inventory entry of a recorder, or None (also when no inventory is loaded)."""
        inv = self._inventory
        return None if inv is None else inv.get((vendor, serial))

    def restore(
        self, officers: Iterable[Officer] | None, inventory: Iterable[InventoryItem] | None
    ) -> None:
        """Seed the cache with data saved from an earlier good load (e.g. by another process),
        so a file broken before this process first read it still has good data in force."""
        with self._lock:
            if officers is not None:
                self._officers = tuple(officers)
            if inventory is not None:
                self._inventory = {(i.vendor, i.serial): i for i in inventory}

    def reload(self) -> str | None:
        """Re-read the configured files; return None on success, else the error message(s)."""
        errors: list[str] = []
        with self._lock:
            self.roster_error = self.inventory_error = None
            if self.roster_file is not None:
                try:
                    self._officers = tuple(load_roster(self.roster_file))
                except RosterError as exc:
                    self.roster_error = str(exc)
                    errors.append(str(exc))
            if self.inventory_file is not None:
                try:
                    items = load_inventory(self.inventory_file)
                    self._inventory = {(i.vendor, i.serial): i for i in items}
                except RosterError as exc:
                    self.inventory_error = str(exc)
                    errors.append(str(exc))
        for err in errors:
            logger.error("%s (previous good data stays in force)", err)
        return "; ".join(errors) or None
