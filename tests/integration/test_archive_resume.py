"""Kill the agent in the middle of a multipart upload; the restart resumes the same upload.

The agent runs as a subprocess (`evidence-agent run`) and talks to SeaweedFS through a counting
proxy, so the test sees every UploadPart request on both sides of the crash.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.archive import MIB, write_big_clip
from fixtures.s3proxy import CountingProxy
from fixtures.station import ROOT

PARTS = 6


def _agent(config: Path, log: Path, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_AGENT")}
    if crashpoint:
        env["EVIDENCE_AGENT_CRASHPOINT"] = crashpoint
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )


def _query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


def _wait(pred: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; agent log:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize(
    "point", ["upload.after_part:2", "upload.before_complete", "upload.after_complete"]
)
def test_killed_upload_resumes_same_upload_id(s3_station, seaweed, bodycam, point) -> None:  # type: ignore[no-untyped-def]
    proxy = CountingProxy(seaweed.s3)
    try:
        s3 = s3_station(
            endpoint=proxy.url,
            part_size_bytes=5 * MIB,
            multipart_threshold_bytes=5 * MIB,
            parallel_parts=2,
        )
        st = s3.station
        vol, _ = bodycam(out=st.mount_root / "ZFY0201", serial="ZFY0201", clips=1, seconds=1.0)
        big = write_big_clip(vol, "ZFY0201", "100001", PARTS * 5 * MIB - 12345)
        source_sha = hashlib.sha256(big.read_bytes()).hexdigest()
        db = st.data_dir / "ledger.sqlite3"
        log = st.dir / "agent.log"

        first = _agent(st.config_path, log, crashpoint=point)
        assert first.wait(timeout=120) == -signal.SIGKILL, log.read_text()[-3000:]
        # The ledger still has the upload open (after_complete: the store has finished it).
        uploads = _query(db, "SELECT * FROM archive_uploads WHERE state='open'")
        assert len(uploads) == 1
        uid = uploads[0]["upload_id"]
        recorded = {r["part_number"] for r in _query(db, "SELECT * FROM archive_parts")}
        before = proxy.upload_parts()
        stored_before = {p.part_number for p in before if p.status == 200}
        assert recorded <= stored_before
        if point != "upload.after_part:2":
            assert stored_before == set(range(1, PARTS + 1))
        else:
            assert len(recorded) == 2 and len(stored_before) < PARTS

        second = _agent(st.config_path, log)
        try:
            _wait(
                lambda: bool(
                    _query(
                        db, "SELECT 1 FROM recordings WHERE size > ? AND state='archived'", (MIB,)
                    )
                ),
                120,
                "the big recording to be archived",
                log,
            )
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)

        after = proxy.upload_parts()[len(before) :]
        assert {p.upload_id for p in after} <= {uid}  # the same upload, never a new one
        resent = {p.part_number for p in after}
        assert not resent & stored_before, "a part the store already held was uploaded again"
        assert stored_before | resent == set(range(1, PARTS + 1))
        # One upload of the recording is started (archive.encryption = "server" asks for SSE
        # first, which SeaweedFS refuses with a 500, and probes the refusal under _probe/).
        creates = [r for r in proxy.requests if r.method == "POST" and "uploads" in r.query
                   and r.status == 200 and "/_probe/" not in r.path]  # fmt: skip
        completes = [r for r in proxy.requests if r.method == "POST" and r.upload_id == uid]
        assert len(creates) == 1 and [c.status for c in completes] == [200]

        row = _query(
            db,
            "SELECT r.sha256, o.checksum, o.key, o.version_id FROM recordings r"
            " JOIN archive_objects o ON o.recording_id = r.id WHERE r.size > ?",
            (MIB,),
        )[0]
        assert row["sha256"] == source_sha and row["checksum"].endswith(f"-{PARTS}")
        body = seaweed.client().get_object(
            Bucket=s3.bucket, Key=row["key"], VersionId=row["version_id"]
        )["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == source_sha
    finally:
        proxy.close()
