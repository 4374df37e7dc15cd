"""The ledger: one SQLite database shared by the daemon and CLI commands.

WAL + synchronous=FULL so a committed row survives power loss; every write is one
`BEGIN IMMEDIATE` transaction so concurrent processes serialise instead of failing half-way;
schema changes are numbered SQL migrations applied in order and recorded in `user_version`;
a migration that must know the station's roots (paths) is a `NNNN_*.py` module whose
`migrate(conn, roots, station)` runs in the same transaction.
Connections are per thread (sqlite3 objects must not cross threads).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.resources
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from agent.core.errors import LedgerError
from agent.ledger import kv

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 60_000
# A migration that builds indexes over years of history takes minutes on a dock PC; systemd
# must not kill the agent as "failed to start" meanwhile (sd_notify EXTEND_TIMEOUT_USEC).
MIGRATION_EXTEND_USEC = 15 * 60 * 1_000_000


def _extend_start_timeout(name: str) -> None:
    from agent.core.sdnotify import SystemdNotifier

    notifier = SystemdNotifier()
    notifier.notify(f"EXTEND_TIMEOUT_USEC={MIGRATION_EXTEND_USEC}")
    notifier.status(f"upgrading the ledger: migration {name}")
    notifier.close()


class StationConnection(sqlite3.Connection):
    """A ledger connection that knows whose station it is (see Ledger.identify)."""

    station: str | None = None
    timezone: str = "UTC"
    suite: str | None = None  # crypto.suite: "sm" keeps an SM3 custody chain (agent.ledger.custody)


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for res in importlib.resources.files("agent.ledger.migrations").iterdir():
        m = re.match(r"^(\d{4})_.*\.(sql|py)$", res.name)
        if m:
            text = res.read_text(encoding="utf-8") if m.group(2) == "sql" else ""
            found.append((int(m.group(1)), res.name, text))
    return sorted(found)


def _run_python_migration(
    conn: sqlite3.Connection, name: str, roots: Mapping[str, Path], station: str | None
) -> None:
    module = importlib.import_module(f"agent.ledger.migrations.{name.removesuffix('.py')}")
    module.migrate(conn, roots, station)


class Ledger:
    def __init__(
        self,
        path: Path,
        roots: Mapping[str, Path] | None = None,
        station: str | None = None,
    ) -> None:
        self.path = path
        # Python migrations need the roots; without a config they are the embedded defaults.
        self.roots = roots or {
            "data": path.parent,
            "spool": path.parent / "spool",
            "archive": path.parent / "archive",
        }
        self.station = station
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"cannot create {path.parent}: {exc} (check station.data_dir)"
            ) from exc
        self._migrate()

    def identify(self, station: str, timezone: str, suite: str | None = None) -> None:
        """Name the station on this ledger's connections, so events created through them
        carry `station` and the station's clock (agent.ledger.events), and custody events the
        configured crypto.suite's chain values."""
        self.station, self.timezone, self.suite = station, timezone, suite

    def connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    factory=StationConnection,
                )
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._local.conn = conn
        # Set on every call: the migrating connection exists before Ledger.identify.
        conn.station = getattr(self, "station", None)  # type: ignore[attr-defined]
        conn.timezone = getattr(self, "timezone", "UTC")  # type: ignore[attr-defined]
        conn.suite = getattr(self, "suite", None)  # type: ignore[attr-defined]
        return conn

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; taken IMMEDIATE so the write lock is held from the start."""
        conn = self.connect()
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT (deferred constraint, I/O error, busy): SQLite may
            # leave the transaction open, and the next tx() would join it and vanish with it.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Reads that must agree with each other (one WAL snapshot). Never write inside."""
        conn = self.connect()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def query(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> list[sqlite3.Row]:
        return list(self.connect().execute(sql, params))

    def one(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> sqlite3.Row | None:
        return self.connect().execute(sql, params).fetchone()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _migrate(self) -> None:
        with self.tx() as conn:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, name, sql in _migrations():
                if number <= current:
                    continue
                logger.info("ledger %s: applying migration %s", self.path, name)
                _extend_start_timeout(name)
                if name.endswith(".py"):
                    _run_python_migration(conn, name, self.roots, self.station)
                for stmt in _split_sql(sql):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version={number}")

    def get_kv(self, key: str) -> str | None:
        row = self.one("SELECT value FROM kv WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_kv(self, conn: sqlite3.Connection, key: str, value: str) -> None:
        """Store a kv value in `conn`'s transaction (the one kv writer: `agent.ledger.kv`)."""
        kv.put(conn, key, value)


def _split_sql(sql: str) -> list[str]:
    # executescript() would COMMIT our transaction; split on statement ends instead.
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
