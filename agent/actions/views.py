"""Human views (rich tables) of the status document and of ingest results."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    f = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if f < 1024 or unit == "GB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return str(n)


def _short(iso: str | None) -> str:
    """Local wall time to the second (the offset is the station's, shown in the header)."""
    return iso[:19].replace("T", " ") if iso else "-"


def print_status(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    st = doc["station"]
    console.print(
        f"[bold]station[/] {st['id']} ({st['role']}, v{st['version']}), "
        f"clock {'synced' if st['clock_synced'] else '[yellow]NOT synced[/]'}, "
        f"spool free {_size(st['spool_free_bytes'])}"
    )
    t = Table(title="recorders")
    cols = (
        "serial",
        "vendor",
        "officer",
        "unit",
        "status",
        "docked",
        "battery",
        "clock",
        "last docked",
    )
    for col in cols:
        t.add_column(col)
    for r in doc["recorders"]:
        battery = "-" if r.get("battery") is None else f"{r['battery']}%"
        if r.get("charging"):
            battery += " +"
        offset = r.get("clock_offset_s")
        t.add_row(
            r["serial"],
            r["vendor"],
            r["officer"] or "-",
            r["unit"] or "-",
            r["status"] + (" [red](quarantine)[/]" if r.get("quarantined") else ""),
            "yes" if r["docked"] else "no",
            battery,
            "-" if offset is None else f"{offset:+.0f} s",
            r["last_docked"] or "-",
        )
    console.print(t)
    if "interview" in doc:
        print_interview(doc["interview"], console)
    recordings_table(doc["recordings"], console)


def print_interview(iv: dict[str, Any], console: Console) -> None:
    running = "running" if iv["service_running"] else "[red]NOT running[/]"
    lamp = {True: "on", False: "off", None: "-"}[iv["lamp"]]
    video_only = " [red]VIDEO ONLY (ffmpeg missing)[/]" if iv["video_only"] else ""
    console.print(
        f"[bold]interview room[/] {iv['room']}: service {running}, lamp {lamp}{video_only}"
    )
    s = iv["session"]
    if s is not None:
        cov = "-" if s["coverage"] is None else f"{100 * s['coverage']:.1f} %"
        console.print(
            f"  session {s['id']} {s['state']}, case {s['case_number'] or '-'}, since "
            f"{_short(s['started_at'] or s['requested_at'])}, open gaps {s['open_gaps']}, "
            f"coverage {cov}"
        )
    for cam, st in (iv["cameras"] or {}).items():
        console.print(
            f"  {cam}: {st.get('state', '-')}, {st.get('fps', 0):.1f} fps, "
            f"sound {st.get('sound_dbfs', '-')} dBFS, gaps open {st.get('gaps_open') or '-'}"
        )


def recordings_table(
    rows: list[dict[str, Any]], console: Console, title: str = "recordings"
) -> None:
    t = Table(title=title)
    # The 12-digit SHA-256 prefix is a valid handle for every command and fits a terminal;
    # full ids are in --json.
    for col in ("ref", "serial", "officer", "start", "state", "size", "deadline"):
        t.add_column(col, no_wrap=col != "state")
    for r in rows:
        state = r["state"] if not r.get("reason") else f"{r['state']}: {r['reason']}"
        ref = r["sha256"][:12] if r["sha256"] else r["id"][-12:]
        t.add_row(
            ref,
            r["serial"],
            r["officer"] or "-",
            _short(r["start"]),
            state,
            _size(r["size"]),
            _short(r["deadline"])[:10],
        )
    console.print(t)
