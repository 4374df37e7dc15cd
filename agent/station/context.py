"""The station context: config plus the long-lived objects built from it, made once.

Everything that needs the ledger, the calendar, the signing key or the spool directories
takes a Context instead of building its own.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config.loader import AgentConfig
from agent.core import envelope
from agent.ledger import handover, stationkey
from agent.ledger import paths as stationpaths
from agent.ledger.copylocks import DeviceLocks, SpoolLock
from agent.ledger.db import Ledger
from agent.rules.workcal import DeadlineRule, WorkCalendar, WorkingDaysRule, load_overrides
from agent.station import kek

if TYPE_CHECKING:
    from agent.station.rosterstate import RosterState

logger = logging.getLogger(__name__)


class Context:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.stop = threading.Event()
        cfg.station.data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.ledger = Ledger(cfg.ledger_path, stationpaths.roots(cfg), cfg.station.id)
        self.ledger.identify(cfg.station.id, cfg.station.timezone, cfg.crypto.suite)

    @property
    def station_id(self) -> str:
        return self.cfg.station.id

    @cached_property
    def key(self) -> Ed25519PrivateKey:
        # custody.signing_key_file: the private key outside the data dir (None: keys/).
        own = self.cfg.custody.signing_key_file
        conn = self.ledger.connect()
        handover.finish_pending(self.cfg.keys_dir, conn, str(own) if own else None)  # cut off
        signed = self.ledger.one("SELECT COUNT(*) FROM checkpoints")
        return stationkey.load_or_create(self.cfg.keys_dir, int(signed[0]) if signed else 0, own)

    @cached_property
    def sm2(self) -> tuple[bytes, bytes] | None:
        """The station SM2 key pair that co-signs checkpoints under crypto.suite = "sm"."""
        if self.cfg.crypto.suite != "sm":
            return None
        from agent.station import sm2key

        return sm2key.load_or_create(self.cfg.keys_dir)

    @cached_property
    def seal(self) -> envelope.Recipients | None:
        """Whom new spool copies are encrypted for; None writes plaintext (crypto.encrypt)."""
        return kek.recipients(self.cfg)

    @cached_property
    def keyring(self) -> envelope.Keyring | None:
        """The keys that open this station's encrypted copies; None without a station key."""
        return kek.keyring(self.cfg)

    @cached_property
    def calendar(self) -> WorkCalendar:
        path = self.cfg.compliance.calendar_overrides
        overrides = load_overrides(path) if path else None
        return WorkCalendar(self.cfg.station.timezone, overrides)

    @cached_property
    def default_rule(self) -> DeadlineRule:
        if self.cfg.compliance.default_rule is not None:
            return self.cfg.compliance.default_rule
        return DeadlineRule(WorkingDaysRule(days=self.cfg.compliance.working_days))

    def rule_for(self, category: str | None) -> DeadlineRule:
        """The deadline rule of a category (compliance.rules), else the default rule."""
        if category is not None and category in self.cfg.compliance.rules:
            return self.cfg.compliance.rules[category]
        return self.default_rule

    @cached_property
    def rosters(self) -> RosterState:
        """Roster and inventory with the last good data in force (see agent.station.rosterstate)."""
        from agent.station.rosterstate import RosterState

        return RosterState(self.cfg, self.ledger)

    @cached_property
    def spool(self) -> Path:
        path = self.cfg.spool_dir
        # A spool without its marker while the ledger has copies there is refused here, in
        # every process, before anything is written onto what may be the wrong disk.
        stationpaths.check_root(self.cfg, self.ledger.connect(), "spool", path)
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
        return path

    @cached_property
    def spool_lock(self) -> SpoolLock:
        return SpoolLock(self.cfg.locks_dir / "spool.lock")

    @cached_property
    def device_locks(self) -> DeviceLocks:
        return DeviceLocks(self.cfg.locks_dir)

    @cached_property
    def spool_tmp(self) -> Path:
        path = self.spool / ".tmp"
        path.mkdir(exist_ok=True, mode=0o700)
        return path

    def spool_free_bytes(self) -> int:
        st = os.statvfs(self.spool)
        return st.f_bavail * st.f_frsize

    def inventory_status(self, vendor: str, serial: str) -> tuple[bool, str | None, bool]:
        """(registered, inventory status, quarantine?) for a recorder.

        With no inventory configured every recorder is accepted (shown as unregistered);
        with one, a recorder not listed in it is quarantined (also while no good inventory
        has been loaded yet: unknown is never taken for accepted).
        """
        if self.cfg.inventory.file is None:
            return False, None, False
        if vendor == "interview":
            # An interview room's cameras are declared in this station's own config, not
            # plugged in by someone: never quarantined, and no body-worn recorders to count.
            return False, None, False
        for item in self.rosters.inventory() or ():
            if item.serial == serial and item.vendor.lower() in (vendor.lower(), "*", ""):
                return True, str(item.status), False
        return False, None, True

    def close(self) -> None:
        self.ledger.close()
        for name in ("spool_lock", "device_locks"):
            if name in self.__dict__:
                getattr(self, name).close()
