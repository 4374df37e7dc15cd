"""Stop the S3 server for a while: ingest continues, uploads wait, then drain, all verified."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from agent.archive.backlog import archive_backlog
from agent.archive.s3.store import parse_ref
from agent.core import clock
from agent.daemon.main import Daemon


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_outage_ingest_continues_uploads_wait_then_drain(
    s3_station, seaweed_factory, bodycam
) -> None:  # type: ignore[no-untyped-def]
    server = seaweed_factory()
    s3 = s3_station(server=server, ingest="")  # release_after = "archived" (the default)
    ctx = s3.context()
    daemon = Daemon(ctx)
    daemon.start()

    def count(state: str) -> int:
        row = ctx.ledger.one("SELECT COUNT(*) FROM recordings WHERE state=?", (state,))
        return int(row[0])

    try:
        bodycam(out=s3.station.mount_root / "A", serial="ZFY0501", clips=2, seconds=1.0)
        _wait(lambda: count("released") == 2, 60, "the first recorder's clips to be released")

        server.stop()
        down_at = clock.iso(clock.now()) or ""
        _, clips_b = bodycam(
            out=s3.station.mount_root / "B", serial="ZFY0502", clips=3, seconds=1.0
        )
        _wait(lambda: count("spooled") == 3, 60, "ingest to go on while the store is down")
        _wait(
            lambda: bool(ctx.ledger.one("SELECT 1 FROM outbox WHERE type='archive.failed'")),
            60,
            "an archive.failed event",
        )
        time.sleep(2)
        assert count("archived") + count("released") == 2  # nothing while the store is down
        assert all(c.exists() for c in clips_b)  # so nothing erased from the recorder either
        backlog = archive_backlog(ctx)
        assert backlog["recordings"] == 3 and "cannot reach the store" in backlog["last_error"]
        failed = ctx.ledger.query("SELECT payload FROM outbox WHERE type='archive.failed'")
        assert len(failed) == 1  # one event for the outage, not one per retry

        up_at = clock.iso(clock.now()) or ""
        server.start()
        _wait(lambda: count("released") == 5, 60, "the backlog to drain after the outage")
        assert not any(c.exists() for c in clips_b)  # erased only once verifiably archived
    finally:
        daemon.shutdown()

    client = server.client()
    for r in ctx.ledger.query(
        "SELECT r.id, r.sha256, r.archive_ref, r.archived_at, d.serial FROM recordings r"
        " JOIN devices d ON d.id = r.device_id"
    ):
        b, k, v = parse_ref(r["archive_ref"])
        body = client.get_object(Bucket=b, Key=k, VersionId=v)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == r["sha256"]
        if r["serial"] == "ZFY0502":
            assert r["archived_at"] > up_at > down_at
    completed = [
        json.loads(r["payload"])
        for r in ctx.ledger.query("SELECT payload FROM outbox WHERE type='archive.completed'")
    ]
    assert len(completed) == 5
    assert archive_backlog(ctx)["last_error"] is None
