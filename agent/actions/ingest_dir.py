"""`evidence-agent ingest DIR`: register one volume and copy all of it now; never erases."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from agent.actions.views import recordings_table
from agent.core.errors import AgentError
from agent.core.wiretime import localize
from agent.ingest.ingestor import Ingestor, Outcome
from agent.ledger import custody
from agent.station.context import Context


def ingest_dir(ctx: Context, root: Path, as_json: bool = False, max_wait: float = 60.0) -> int:
    if not root.is_dir():
        raise AgentError(f"{root} is not a directory (give the mount point of a recorder volume)")
    console = Console(stderr=True, quiet=as_json)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("scanning", total=None)
        totals: dict[str, int] = {}

        def progress(serial: str, rid: str, done: int, total: int) -> None:
            totals[rid] = done
            bar.update(task, completed=sum(totals.values()))

        _ = ctx.key  # a missing station key stops us before any copy (agent.ledger.stationkey)
        ing = Ingestor(ctx, progress)
        ing.recover()
        # Pinned: a daemon running beside us leaves this recorder to this run.
        report = ing.register_volume(root, pin=True)
        pending = ctx.ledger.one(
            "SELECT COUNT(*), COALESCE(SUM(size),0) FROM recordings WHERE device_id=? AND"
            " state IN ('discovered','failed','copying')",
            (report.device_id,),
        )
        assert pending is not None
        bar.update(task, description=f"{report.serial}: {pending[0]} files", total=pending[1])
        try:
            outcomes = _drain(ctx, ing, root, report.device_id, max_wait)
        finally:
            ctx.device_locks.unpin(report.device_id)
        with ctx.ledger.tx() as conn:
            custody.checkpoint(conn, ctx.key, ctx.station_id, ctx.sm2)
    waiting = [r["source_path"] for r in ing.waiting([report.device_id])]
    failed = [o for o in outcomes if o.state == "failed"]
    result: dict[str, Any] = {
        "volume": str(root),
        "serial": report.serial,
        "files": report.files,
        "new": report.new,
        "copied": sum(o.state != "failed" for o in outcomes),
        "failed": [{"id": o.recording_id, "reason": o.reason} for o in failed],
        "waiting": waiting,
        "issues": [{"path": i.path, "kind": i.kind, "reason": i.reason} for i in report.issues],
    }
    if as_json:
        print(json.dumps(localize(result, ctx.cfg.station.timezone), ensure_ascii=False, indent=2))
    else:
        _print_result(ctx, console, result, [o.recording_id for o in outcomes])
    return 1 if failed else 0


def _drain(
    ctx: Context, ing: Ingestor, root: Path, device_id: int, max_wait: float
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + max_wait
    tried: set[str] = set()
    while True:
        # A file that failed once in this run is reported, not retried in a loop.
        row = ing.claim([device_id], exclude=tried, retry_seconds=0)
        if row is not None:
            tried.add(row["id"])
            outcomes.append(ing.ingest(row))
            continue
        if not ing.waiting([device_id]) or time.monotonic() > deadline:
            break
        time.sleep(min(1.0, max(ctx.cfg.detect.settle_seconds / 2, 0.1)))
        ing.register_volume(root)  # growing files: pick up their new size
    return outcomes


def _print_result(ctx: Context, console: Console, result: dict[str, Any], ids: list[str]) -> None:
    from agent.actions.status import recordings as list_recordings

    out = Console()
    rows = [r for r in list_recordings(ctx) if r["id"] in set(ids)]
    if rows:
        recordings_table(rows, out, title=f"ingested from {result['volume']}")
    out.print(
        f"recorder {result['serial']}: {result['files']} evidence files, "
        f"{result['copied']} copied now, {len(result['failed'])} failed"
    )
    for f in result["failed"]:
        out.print(f"[red]failed[/] {f['id']}: {f['reason']}")
    for w in result["waiting"]:
        out.print(f"[yellow]waiting[/] {w}: still being written; run ingest again later")
    for i in result["issues"]:
        if i["kind"] != "ignored":
            out.print(f"[yellow]{i['kind']}[/] {i['path']}: {i['reason']}")
