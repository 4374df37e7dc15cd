"""One driver's poll loop: discover → identify → status → clock → storage mode, per recorder.

The daemon runs one `DriverRunner.step` per configured driver in its own supervised thread.
Everything that goes wrong with one recorder (garbage, timeouts, unplugged mid-command, a
wrong password, two devices with one serial) becomes a `recorder.error` event for that
recorder only; the loop carries on with the others. A handle is worked through once per
attach; a refused password is never retried with the same password (recorders lock up).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from agent.core import clock, identifiers
from agent.ledger import devices as device_rows
from agent.recorders import inventory as devices
from agent.recorders import recclock
from agent.recorders.linker import Linker
from agent.station.context import Context
from drivers.base import DeviceAuthError, DeviceError, DeviceIdentity, DeviceStatus, Driver

logger = logging.getLogger(__name__)

_UNSET = "<unset>"


@dataclass
class _Handle:
    ident: DeviceIdentity | None = None
    vendor: str | None = None  # as recorded in the ledger
    device_id: int | None = None
    switched: bool = False  # storage mode accepted: the volume is on its way
    blocked: str | None = None  # secret fingerprint a login failed with (or _UNSET)
    last_status: float = 0.0


class DriverRunner:
    def __init__(self, ctx: Context, driver: Driver, linker: Linker) -> None:
        self.ctx = ctx
        self.driver = driver
        self.linker = linker
        self.handles: dict[str, _Handle] = {}
        self._discover_error: str | None = None

    @property
    def label(self) -> str:
        return self.driver.label

    def step(self) -> float:
        """One poll of the transport; returns seconds until the next."""
        poll = self.driver.settings.poll_seconds
        try:
            present = self.driver.discover()
        except DeviceError as exc:
            if str(exc) != self._discover_error:  # said once, not every poll
                self._discover_error = str(exc)
                self._publish(None, None, "discover", exc)
            return max(poll, 5.0)
        if self._discover_error is not None:
            logger.info("%s: transport available again", self.label)
            self._discover_error = None
        for gone in set(self.handles) - set(present):
            self._gone(gone)
        for handle in present:
            if self.ctx.stop.is_set():
                break
            state = self.handles.get(handle)
            if state is None:
                self.handles[handle] = state = _Handle()
                self._attach(handle, state)
            else:
                self._revisit(handle, state)
        return poll

    # --- per handle ---------------------------------------------------------------------------

    def _attach(self, handle: str, st: _Handle) -> None:
        logger.info("%s: recorder attached at %s", self.label, handle)
        try:
            st.ident = self.driver.identify(handle)
        except DeviceError as exc:
            self._publish(handle, None, "identify", exc)
            if exc.code == "garbled":
                # It answers, but its identity is unreadable: the volume's device info file
                # will name the recorder, so expose it rather than hold the evidence back.
                self._storage(handle, st)
            else:
                st.switched = True  # silent or gone: re-seating the recorder retries
            return
        # The recorder's own words are untrusted: a refused serial gets the agent's stand-in.
        st.ident, refused = identifiers.vet_identity(st.ident)
        ident = st.ident
        ident.notes.extend(refused)
        conflict = self.linker.attach(self.label, handle, ident)
        if conflict is not None:
            dup = DeviceError(
                f"{self.label} recorder at {handle} reports serial {ident.serial}, which "
                f"{conflict} also reports; left alone (not switched to storage) so the "
                "evidence of two recorders is never merged. Check both devices' serials",
                code="duplicate",
            )
            self._publish(handle, ident.serial, "identify", dup)
            st.ident, st.switched = None, True  # nothing more to do with this handle
            return
        for note in ident.notes:
            self._publish(handle, ident.serial, "identify", DeviceError(note, code="garbled"))
        status = self._status(handle, st)
        if status is None and st.ident is None:
            return  # vanished
        now = clock.now()
        with self.ctx.ledger.tx() as conn:
            seen = devices.sight(conn, self.ctx, ident, status, self.label, when=now)
            device_rows.mark_refused(conn, seen.device_id, refused)
            st.vendor, st.device_id = seen.vendor, seen.device_id
        st.last_status = time.monotonic()
        recorder_clock = status.clock if status is not None else None
        if recorder_clock is None or self._clock(handle, st, recorder_clock, now):
            self._storage(handle, st)

    def _status(self, handle: str, st: _Handle) -> DeviceStatus | None:
        try:
            return self.driver.status(handle)
        except DeviceError as exc:
            serial = st.ident.serial if st.ident else None
            self._publish(handle, serial, "status", exc, vendor=st.vendor)
            if exc.gone:
                st.ident = None
            return None

    def _clock(self, handle: str, st: _Handle, recorder_clock: datetime, now: datetime) -> bool:
        """Measure, record, maybe set. False if the device vanished meanwhile."""
        assert st.ident is not None and st.device_id is not None
        serial = st.ident.serial
        with self.ctx.ledger.tx() as conn:
            offset = recclock.record_offset(
                conn, self.ctx, st.device_id, serial, recorder_clock, now
            )
        if abs(offset) <= self.ctx.cfg.recorders.clock_threshold_seconds:
            return True
        allowed, why = recclock.may_set(self.ctx)
        if not allowed:
            logger.warning("recorder %s: clock off by %+.0f s; left alone: %s", serial, offset, why)
            with self.ctx.ledger.tx() as conn:
                recclock.drift_event(conn, serial, offset, "left", why)
            return True
        set_to = clock.now()
        try:
            self.driver.set_clock(handle, set_to)
        except DeviceError as exc:
            self._publish(handle, serial, "clock", exc, vendor=st.vendor)
            with self.ctx.ledger.tx() as conn:
                recclock.drift_event(conn, serial, offset, "left", str(exc))
            return not exc.gone
        logger.info("recorder %s: clock was off by %+.0f s; set to station time", serial, offset)
        with self.ctx.ledger.tx() as conn:
            recclock.record_set(conn, st.device_id, serial, offset, set_to)
            recclock.drift_event(conn, serial, offset, "set", why)
        return True

    def _storage(self, handle: str, st: _Handle) -> None:
        serial = st.ident.serial if st.ident else None
        try:
            self.driver.storage_mode(handle)
        except DeviceAuthError as exc:
            st.blocked = self.driver.secret_fingerprint() or _UNSET
            self._publish(handle, serial, "login", exc, auth=True, vendor=st.vendor)
            return
        except DeviceError as exc:
            if exc.code == "no_credential":
                st.blocked = _UNSET
            else:
                st.switched = True  # timeouts, refusals: re-seating the recorder retries
            self._publish(handle, serial, "storage_mode", exc, vendor=st.vendor)
            return
        st.switched, st.blocked = True, None
        logger.info("%s: recorder %s at %s switched to mass storage", self.label, serial, handle)

    def _revisit(self, handle: str, st: _Handle) -> None:
        if not st.switched and st.blocked is not None:
            # Only a changed credential is worth another login: the same password again
            # would count towards the recorder's lockout.
            if (self.driver.secret_fingerprint() or _UNSET) != st.blocked:
                logger.info("%s: credential changed; retrying %s", self.label, handle)
                self._storage(handle, st)
            return
        refresh = self.ctx.cfg.recorders.status_refresh_seconds
        if st.device_id is None or time.monotonic() - st.last_status < refresh:
            return
        st.last_status = time.monotonic()
        status = self._status(handle, st)
        if status is not None:
            with self.ctx.ledger.tx() as conn:
                devices.update_status(conn, st.device_id, status)

    def _gone(self, handle: str) -> None:
        st = self.handles.pop(handle)
        self.driver.forget(handle)
        self.linker.detach(self.label, handle)
        if st.ident is not None and st.vendor is not None and not st.switched:
            with self.ctx.ledger.tx() as conn:
                device_rows.undock_unmounted(conn, st.vendor, st.ident.serial)
        logger.info("%s: recorder at %s detached", self.label, handle)

    def _publish(
        self,
        handle: str | None,
        serial: str | None,
        stage: str,
        exc: DeviceError,
        auth: bool = False,
        vendor: str | None = None,
    ) -> None:
        """Log and publish a device error; with `vendor` (the recorder's ledger row is known)
        also keep it on that row. Never on a row merely named by a serial: a duplicate's
        error must not be pinned on the recorder whose serial it copies."""
        logger.warning("%s", exc)
        with self.ctx.ledger.tx() as conn:
            device_rows.report_error(
                conn,
                driver=self.label,
                handle=handle,
                serial=serial,
                stage=stage,
                code=exc.code,
                message=str(exc),
                keep_on=vendor,
                auth=auth,
            )

    def close(self) -> None:
        self.driver.close()
