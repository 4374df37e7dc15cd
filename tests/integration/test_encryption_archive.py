"""Encrypted spool copies through the archive (issue 19): S3 receives the plaintext (single put
and multipart), the local archive keeps the envelope; both verify against the plaintext hash."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

from agent.archive.archiver import Archiver
from agent.archive.s3.store import parse_ref
from agent.core import sealedio
from agent.station import kek
from fixtures.archive import MIB, drain, ingest_volume, write_big_clip


def _key(tmp_path: Path) -> str:
    path = tmp_path / "etc-keys" / "encryption.key"
    kek.write_ring(path, [os.urandom(32)])
    return f'[crypto]\nencrypt = "required"\nkey_file = "{path}"\n'


def test_s3_receives_plaintext_of_encrypted_copies(s3_station, bodycam, tmp_path):
    s3 = s3_station(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, raw=_key(tmp_path))
    vol, clips = bodycam(serial="ZFY1910", clips=2, seconds=1.0)
    clips.append(write_big_clip(vol, "ZFY1910", "100001", 11 * MIB, seq=91))
    source = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in clips}
    ctx = s3.context()
    ids = ingest_volume(ctx, vol)
    spool = [ctx.cfg.spool_dir / r["spool_path"] for r in ctx.ledger.query(
        "SELECT spool_path FROM recordings")]  # fmt: skip
    assert len(spool) == 3 and all(sealedio.is_sealed(p) for p in spool)
    drain(Archiver(ctx))
    client = s3.server.client()
    for rid in ids:
        row = ctx.ledger.one("SELECT state, archive_ref, source_path FROM recordings WHERE id=?",
                             (rid,))  # fmt: skip
        assert row is not None and row["state"] == "archived"
        bucket, key, version = parse_ref(row["archive_ref"])
        body = client.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == source[Path(row["source_path"]).name]
    assert s3.station.cli("verify").returncode == 0


def test_local_archive_keeps_the_envelope(make_station, bodycam, tmp_path):
    st = make_station(_key(tmp_path))
    vol, clips = bodycam(serial="ZFY1911", clips=2, seconds=1.0)
    ctx = st.context()
    ids = ingest_volume(ctx, vol)
    drain(Archiver(ctx))
    objects = [p for p in (st.data_dir / "archive").rglob("*") if p.is_file()
               and len(p.name) == 64]  # fmt: skip
    assert len(objects) == 2 and all(sealedio.is_sealed(p) for p in objects)
    for p in objects:
        assert not any(c.read_bytes()[100:140] in p.read_bytes() for c in clips)
    states = {r["state"] for r in ctx.ledger.query("SELECT state FROM recordings")}
    assert states == {"archived"} and len(ids) == 2
    assert st.cli("verify").returncode == 0
    # Once the spool copies are gone (as housekeeping removes them), verify and export read
    # the archived envelopes; the export streams their plaintext.
    conn = sqlite3.connect(st.data_dir / "ledger.sqlite3")
    with conn:
        for (rel,) in conn.execute("SELECT spool_path FROM recordings").fetchall():
            (ctx.cfg.spool_dir / rel).unlink()
        conn.execute("UPDATE recordings SET spool_removed_at = '2026-12-03T00:00:00+08:00'")
    conn.close()
    out = st.cli("verify", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["recordings_checked"] == 2
    dest = tmp_path / "export"
    st.cli("export", *ids, "--to", str(dest), "--reason", "复议", "--operator", "OP1", check=True)
    got = sorted(p.read_bytes() for p in dest.iterdir() if p.name.startswith(tuple(ids)))
    assert got == sorted(c.read_bytes() for c in clips)
