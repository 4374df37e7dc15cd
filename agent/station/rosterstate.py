"""The roster and inventory as tagging and the compliance clock see them, across processes.

`RosterCache` keeps the last good data in force within one process. The daemon, `tag` and
`report` are separate processes, so the last good data is also saved in the ledger (`kv`):
a roster broken by an edit while the daemon was down still leaves the previous good roster in
force for the next `report`, with a warning naming the file, line and column. Files are
re-read only when their size or mtime changed, so a broken file is reported once per edit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.config.loader import AgentConfig
from agent.ledger.db import Ledger
from agent.rules.roster import InventoryItem, InventoryStatus, Officer, RosterCache

logger = logging.getLogger(__name__)

_ROSTER_KEY = "roster.last_good"
_INVENTORY_KEY = "inventory.last_good"


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)  # missing: reload() reports it
    return (st.st_mtime_ns, st.st_size)


class RosterState:
    def __init__(self, cfg: AgentConfig, ledger: Ledger) -> None:
        self.roster_file = cfg.roster.file
        self.inventory_file = cfg.inventory.file
        self.ledger = ledger
        self.cache = RosterCache(self.roster_file, self.inventory_file)
        self._stamps: tuple[Any, Any] | None = None
        self._lock = threading.Lock()
        self.cache.restore(*self._saved())

    @property
    def roster_configured(self) -> bool:
        return self.roster_file is not None

    @property
    def inventory_configured(self) -> bool:
        return self.inventory_file is not None

    def refresh(self) -> list[str]:
        """Re-read changed files; returns the current problems (empty when all is well)."""
        with self._lock:
            stamps = (_stamp(self.roster_file), _stamp(self.inventory_file))
            if stamps != self._stamps:
                self._stamps = stamps
                self.cache.reload()
                self._save()
            return self.problems()

    def problems(self) -> list[str]:
        out = []
        for err, kept in (
            (self.cache.roster_error, bool(self.cache.officers)),
            (self.cache.inventory_error, self.cache.inventory is not None),
        ):
            if err:
                then = "the previous good data stays in force" if kept else "no good data yet"
                out.append(f"{err} ({then})")
        return out

    def officers(self) -> tuple[Officer, ...]:
        self.refresh()
        return self.cache.officers

    def inventory(self) -> tuple[InventoryItem, ...] | None:
        self.refresh()
        return self.cache.inventory

    def officer_ids(self) -> set[str] | None:
        """Ids of every officer in the roster (active or not); None when no roster is set."""
        if not self.roster_configured:
            return None
        return {o.officer_id for o in self.officers()}

    # --- last good data in the ledger ------------------------------------------------------

    def _saved(self) -> tuple[list[Officer] | None, list[InventoryItem] | None]:
        officers = inventory = None
        try:
            raw = self.ledger.get_kv(_ROSTER_KEY)
            if raw and self.roster_configured:
                officers = [Officer(**o) for o in json.loads(raw)["officers"]]
            raw = self.ledger.get_kv(_INVENTORY_KEY)
            if raw and self.inventory_configured:
                inventory = [
                    InventoryItem(**{**i, "status": InventoryStatus(i["status"])})
                    for i in json.loads(raw)["items"]
                ]
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("saved roster/inventory in the ledger is unreadable (%s); ignored", exc)
        return officers, inventory

    def _save(self) -> None:
        rows: list[tuple[str, str]] = []
        if self.roster_file is not None and self.cache.roster_error is None:
            body = {
                "file": str(self.roster_file),
                "officers": [asdict(o) for o in self.cache.officers],
            }
            rows.append((_ROSTER_KEY, json.dumps(body, ensure_ascii=False)))
        inv = self.cache.inventory
        if (
            self.inventory_file is not None
            and self.cache.inventory_error is None
            and inv is not None
        ):
            body = {"file": str(self.inventory_file), "items": [asdict(i) for i in inv]}
            rows.append((_INVENTORY_KEY, json.dumps(body, ensure_ascii=False)))
        changed = [(k, v) for k, v in rows if self.ledger.get_kv(k) != v]
        if changed:
            with self.ledger.tx() as conn:
                for key, value in changed:
                    self.ledger.set_kv(conn, key, value)
