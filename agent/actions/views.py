"""Human views (rich tables) of the status document and of ingest results."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from agent.actions.texttable import Column, render


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
    if st.get("calendar_warning"):
        console.print(f"[yellow]warning:[/] {st['calendar_warning']}")
    for name in doc.get("spool_orphans", ()):
        console.print(f"[yellow]orphan[/] {name}: moved aside by recovery, no ledger row names it")
    _print_open_work(doc.get("open_work"), console)
    docked = [r for r in doc["recorders"] if r["docked"]]
    t = Table(
        title=f"docked recorders ({len(docked)} of {len(doc['recorders'])})",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    for col in ("serial", "officer", "unit", "status", "battery", "clock", "last docked"):
        # The serial is what an operator acts on: never wrapped or cut at 80 columns.
        t.add_column(col, no_wrap=col == "serial", min_width=8 if col == "serial" else None)
    for r in docked:
        battery = "-" if r.get("battery") is None else f"{r['battery']}%"
        if r.get("charging"):
            battery += " +"
        offset = r.get("clock_offset_s")
        t.add_row(
            r["serial"],
            r["officer"] or "-",
            r["unit"] or "-",
            r["status"] + (" [red](quarantine)[/]" if r.get("quarantined") else ""),
            battery,
            "-" if offset is None else f"{offset:+.0f} s",
            _short(r["last_docked"]),
        )
    console.print(t)
    if "interview" in doc:
        print_interview(doc["interview"], console)
    recordings_table(doc["recordings"], console)
    total = doc.get("recordings_total")
    if total is not None:
        more = f"; next page: --before {doc['next_before']}" if doc.get("truncated") else ""
        console.print(f"{len(doc['recordings'])} of {total} recordings shown{more}")


def _print_open_work(work: dict[str, Any] | None, console: Console) -> None:
    if not work:
        return
    d = work["deadlines"]
    console.print(
        f"[bold]open work[/] copying {work['copying']}, waiting {work['discovered']}, "
        f"failed {work['failed']}, quarantined {work['quarantined']}, "
        f"spooled not archived {work['spooled']}; deadlines open {d['open']}, "
        f"at risk {d['at_risk']}, missed {d['missed']}"
    )
    if work["deadlines_at_risk"]:
        recordings_table(work["deadlines_at_risk"], console, title="deadlines at risk")


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
    # The 12-digit SHA-256 prefix is a valid handle for every command and fits a terminal;
    # full ids (and a failure's whole reason) are in --json. Serial, state and deadline stay
    # whole at 80 columns; the other columns give way first. Plain text, not a rich Table:
    # measuring 100 rows' cells was a third of `status` at a million recordings.
    cells = []
    for r in rows:
        state = r["state"] if not r.get("reason") else f"{r['state']}: {r['reason']}"
        if r.get("deadline_status") in ("at_risk", "missed"):
            state = f"{r['state']} ({r['deadline_status']})"
        ref = r["sha256"][:12] if r.get("sha256") else r["id"][-12:]
        cells.append(
            (
                ref,
                r["serial"],
                _short(r["deadline"])[:10],
                state,
                _short(r.get("start"))[5:16],
                _size(r.get("size")),
                r.get("officer") or "-",
            )
        )
    columns = (
        Column("ref", keep=True),
        Column("serial", keep=True),
        Column("deadline", keep=True),
        Column("state", max_width=24),
        Column("start"),
        Column("size"),
        Column("officer", max_width=11),
    )
    console.out(render(columns, cells, console.width, title), highlight=False)
