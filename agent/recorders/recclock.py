"""Recorder clocks: measure the offset at dock, correct recording times, set the clock or not.

The footage on a docked recorder was stamped by its clock as it is now, so the offset read at
dock applies to every recording discovered during that dock: their start/end are corrected
(stored beside the originals, which are never overwritten) and their deadline recomputed from
the corrected end. The clock is set only while the station's own clock can be trusted
(`recorders.station_clock`, NTP sync read from the kernel) and `recorders.set_clock` allows it;
otherwise the recorder is left alone and `clock.drift` says why.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agent.core import clock
from agent.ledger import custody, devices, events
from agent.ledger import recordings as rec
from agent.rules.workcal import deadline as compute_deadline
from agent.station.timesync import clock_synced

if TYPE_CHECKING:
    from agent.station.context import Context


def station_clock_trusted(ctx: Context) -> tuple[bool, str]:
    """(trusted?, why) for the station clock as a source to set recorders from."""
    policy = ctx.cfg.recorders.station_clock
    if policy == "trusted":
        return True, "recorders.station_clock = trusted"
    if policy == "untrusted":
        return False, "recorders.station_clock = untrusted"
    if clock_synced():
        return True, "station clock synchronised (NTP)"
    return False, "station clock is not synchronised (NTP); check chrony/timesyncd"


def may_set(ctx: Context) -> tuple[bool, str]:
    if not ctx.cfg.recorders.set_clock:
        return False, "recorders.set_clock is off"
    return station_clock_trusted(ctx)


def record_offset(
    conn: sqlite3.Connection,
    ctx: Context,
    device_id: int,
    serial: str,
    recorder_clock: datetime,
    station_now: datetime,
) -> float:
    """Store the measured offset (recorder - station, seconds); custody event if above the
    threshold. Returns the offset."""
    # Recorder clocks are read in whole seconds (truncated), so the true reading lies in
    # [t, t+1): take the middle, or every offset would come out half a second short.
    midpoint = (
        recorder_clock + timedelta(seconds=0.5)
        if not recorder_clock.microsecond
        else recorder_clock
    )
    offset = round((midpoint - station_now).total_seconds(), 3)
    at = clock.iso(station_now)
    devices.set_clock_offset(conn, device_id, offset, at)
    threshold = ctx.cfg.recorders.clock_threshold_seconds
    if abs(offset) > threshold:
        trusted, why = station_clock_trusted(ctx)
        custody.append(
            conn,
            "device.clock_offset",
            {
                "serial": serial,
                "offset_s": offset,
                "recorder_clock": clock.iso(recorder_clock),
                "station_clock": at,
                "threshold_s": threshold,
                "station_clock_trusted": trusted,
                "station_clock_basis": why,
            },
        )
    return offset


def record_set(
    conn: sqlite3.Connection, device_id: int, serial: str, offset: float, set_to: datetime
) -> None:
    devices.set_clock_set_at(conn, device_id, clock.iso(set_to))
    custody.append(
        conn,
        "device.clock_set",
        {"serial": serial, "offset_before_s": offset, "set_to": clock.iso(set_to)},
    )


def drift_event(
    conn: sqlite3.Connection, serial: str, offset: float, action: str, reason: str
) -> None:
    events.emit(conn, "clock.drift", serial=serial, offset_s=offset, action=action, reason=reason)


def pending_offset(conn: sqlite3.Connection, ctx: Context, device_id: int) -> float | None:
    """The offset measured during the recorder's current dock, if above the threshold."""
    row = conn.execute(
        "SELECT clock_offset_s, clock_checked_at, last_docked, docked FROM devices WHERE id=?",
        (device_id,),
    ).fetchone()
    if row is None or row["clock_offset_s"] is None or not row["docked"]:
        return None
    checked = clock.parse_iso(row["clock_checked_at"])
    docked = clock.parse_iso(row["last_docked"])
    if checked is None or (docked is not None and checked < docked):
        return None  # measured at an earlier dock: says nothing about today's footage
    offset = float(row["clock_offset_s"])
    return offset if abs(offset) > ctx.cfg.recorders.clock_threshold_seconds else None


def correct_recording(conn: sqlite3.Connection, ctx: Context, rid: str, offset: float) -> None:
    """Corrected start/end (original kept) and a deadline from the corrected end."""
    # Recorder clocks tick in whole seconds; a fractional correction would only add noise.
    offset = float(round(offset))
    row = conn.execute(
        "SELECT start, end, deadline, clock_offset_s, start_corrected, end_corrected"
        " FROM recordings WHERE id=?",
        (rid,),
    ).fetchone()
    if row is None:
        return
    shift = timedelta(seconds=offset)
    start, end = clock.parse_iso(row["start"]), clock.parse_iso(row["end"])
    start_c = clock.iso(start - shift) if start else None
    end_c = clock.iso(end - shift) if end else None
    if (row["clock_offset_s"], row["start_corrected"], row["end_corrected"]) == (
        offset,
        start_c,
        end_c,
    ):
        return
    due = row["deadline"]
    if end is not None:
        rule = ctx.rule_for(_category(conn, rid))
        due = clock.iso(compute_deadline(end - shift, rule, ctx.calendar))
    rec.set_corrected_times(conn, rid, start_c, end_c, offset, due)
    custody.append(
        conn,
        "recording.time_corrected",
        {
            "clock_offset_s": offset,
            "start_original": row["start"],
            "end_original": row["end"],
            "start_corrected": start_c,
            "end_corrected": end_c,
            "deadline": due,
            "deadline_before": row["deadline"],
        },
        recording_id=rid,
    )


def _category(conn: sqlite3.Connection, rid: str) -> str | None:
    """The recording's current metadata category (its deadline rule), if tagged already."""
    row = conn.execute(
        "SELECT json_extract(m.fields, '$.category') FROM recordings r JOIN metadata_versions m"
        " ON m.recording_id = r.id AND m.version = r.metadata_version WHERE r.id = ?",
        (rid,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])
