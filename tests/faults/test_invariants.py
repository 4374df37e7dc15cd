"""The invariant checker itself: it must see each kind of damage (a checker that never fails
proves nothing), and see none on a clean run."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3

import pytest

from agent.ingest.ingestor import Ingestor
from faults.harness import Recorder, check_invariants, sha256_of
from fixtures.station import ledger_rows


@pytest.fixture
def ingested(make_station):
    st = make_station('release_after = "never"')
    rec = Recorder(st.dir / "INV0001", "INV0001")
    rec.record(random.Random(9), 3, lo=5000, hi=9000)
    ctx = st.context()
    ing = Ingestor(ctx)
    ing.register_volume(rec.volume)
    while (row := ing.claim(retry_seconds=0)) is not None:
        assert ing.ingest(row).state == "spooled"
    ctx.close()
    return st, rec


def _sql(st, sql, *params):
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    with conn:
        conn.execute(sql, params)
    conn.close()


def _check(st, rec, final=True):
    return "\n".join(check_invariants(st.config_path, [rec], final=final, release_after="never"))


def test_clean_run_has_no_violation(ingested):
    st, rec = ingested
    assert _check(st, rec) == ""


def _erase_source(st, rec):
    os.unlink(rec.volume / sorted(rec.manifest)[0].decode())


def _duplicate_row(st, rec):
    cols = "device_id, source_path, source_path_raw, size, mtime_ns, state, stable_since,"
    cols += " discovered_at, updated_at, sha256, spool_path"
    _sql(st, f"INSERT INTO recordings(id, {cols}) SELECT id || 'x', {cols} FROM recordings"
             " LIMIT 1")  # fmt: skip


def _copies_dir(st):
    """The one recorder's folder of spool copies (laid out by device id)."""
    return next((st.data_dir / "spool").glob("device-*"))


def _orphan_in_spool(st, rec):
    spool = _copies_dir(st)
    shutil.copy(next(spool.iterdir()), spool / "orphan.mp4")


def _temp_left(st, rec):
    (st.data_dir / "spool" / ".tmp" / ".x.mp4.partial").write_bytes(b"half")


def _wrong_sha(st, rec):
    _sql(st, "UPDATE recordings SET sha256 = ? WHERE rowid = 1", "0" * 64)


def _released_without_gate(st, rec):
    _sql(st, "UPDATE recordings SET state = 'released' WHERE rowid = 1")


def _custody_tampered(st, rec):
    _sql(st, "DROP TRIGGER custody_no_update")  # the guard goes first (migration 0010)
    _sql(st, "UPDATE custody SET payload = '{}' WHERE seq = 2")


def _left_copying(st, rec):
    _sql(st, "UPDATE recordings SET state = 'copying' WHERE rowid = 1")


def _failed_without_reason(st, rec):
    _sql(st, "UPDATE recordings SET state = 'failed', reason = NULL WHERE rowid = 1")


def _copy_missing(st, rec):
    spool = _copies_dir(st)
    victim = next(spool.iterdir())
    os.chmod(victim, 0o600)
    victim.unlink()


def _unhashed_twin(st, rec):
    cols = "device_id, source_path, source_path_raw, size, mtime_ns, stable_since,"
    cols += " discovered_at, updated_at"
    _sql(st, f"INSERT INTO recordings(id, state, {cols}) SELECT id || 'y', 'discovered', {cols}"
             " FROM recordings LIMIT 1")  # fmt: skip


@pytest.mark.parametrize(
    "damage, expect",
    [
        (_erase_source, "not released through the gate"),
        (_duplicate_row, "duplicate"),
        (_unhashed_twin, "2 ledger rows for its content"),
        (_orphan_in_spool, "no ledger row vouches"),
        (_temp_left, "temp file left"),
        (_wrong_sha, "but the source is"),
        (_released_without_gate, "released although"),
        (_custody_tampered, "verify: custody"),
        (_left_copying, "left in state copying"),
        (_failed_without_reason, "failed without a reason"),
        (_copy_missing, "spool copy"),
    ],
)
def test_each_kind_of_damage_is_seen(ingested, damage, expect):
    st, rec = ingested
    damage(st, rec)
    assert expect in _check(st, rec)


def test_a_file_rewritten_after_hashing_is_a_second_recording_not_a_violation(ingested):
    st, rec = ingested
    rel = sorted(rec.manifest)[0]
    path = rec.volume / rel.decode()
    st_ = path.stat()
    path.write_bytes(b"rewritten by the recorder")
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 2_000_000_000))
    rec.changed(rel, sha256_of(path))
    ctx = st.context()
    ing = Ingestor(ctx)
    ing.register_volume(rec.volume)
    while (row := ing.claim(retry_seconds=0)) is not None:
        assert ing.ingest(row).state == "spooled"
    ctx.close()
    assert _check(st, rec) == ""
    assert len(ledger_rows(st, "SELECT 1 FROM recordings")) == 4  # both contents kept
