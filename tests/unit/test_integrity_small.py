"""Small hardening from issue 12 (item 8): a failed COMMIT is rolled back explicitly, archive
references are judged after normalisation, and identifiers are checked in one place."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from agent.archive.local import LocalArchive
from agent.core import identifiers
from agent.core.errors import IntegrityError
from agent.ledger.db import Ledger
from drivers.base import DeviceIdentity


def test_failed_commit_is_rolled_back_and_the_next_transaction_commits(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    # A deferred foreign key makes COMMIT itself fail, leaving SQLite's transaction open.
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        with ledger.tx() as conn:
            conn.execute("PRAGMA defer_foreign_keys=ON")
            conn.execute(
                "INSERT INTO recordings(id, device_id, source_path, source_path_raw, size,"
                " mtime_ns, state, discovered_at, updated_at, stable_since)"
                " VALUES('r1', 999, 'a', x'61', 1, 1, 'discovered', 'x', 'x', 'x')"
            )
    assert not ledger.connect().in_transaction
    with ledger.tx() as conn:  # without the rollback this would join the dead transaction
        ledger.set_kv(conn, "probe", "written")
    other = sqlite3.connect(tmp_path / "ledger.sqlite3")
    try:
        assert other.execute("SELECT value FROM kv WHERE key='probe'").fetchone() == ("written",)
        assert other.execute("SELECT COUNT(*) FROM recordings").fetchone() == (0,)
    finally:
        other.close()
    ledger.close()


def test_archive_refs_are_checked_after_normalisation(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    (root / "ab").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside the archive")
    arch = LocalArchive(f"file://{root}", off_station=False)
    for ref in (
        f"file://{root}/../secret.txt",  # `..` once passed: {root} is among its parents
        f"file://{root}/ab/../../secret.txt",
        f"s3://{root}/ab/x",
    ):
        with pytest.raises(IntegrityError, match="outside the archive"):
            with arch.open_read(ref):
                pass
    os.symlink(secret, root / "ab" / "link")  # a link inside that leads out
    with pytest.raises(IntegrityError, match="outside the archive"):
        arch.check(f"file://{root}/ab/link", "0" * 64, 19)
    # Reached through a symlinked root, a real object still resolves.
    (root / "ab" / "obj").write_bytes(b"x")
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    with LocalArchive(f"file://{alias}", off_station=False).open_read(
        f"file://{root}/ab/obj"
    ) as fh:
        assert fh.read() == b"x"


@pytest.mark.parametrize(
    "value, ok",
    [
        ("ZFY0001", True),
        ("a.b-c_d", True),
        (".tmp", False),
        ("..", False),
        (".", False),
        ("", False),
        ("a/b", False),
        ("-rf", False),
        ("x" * 65, False),
        ("序列号", False),
        ("a\nb", False),
    ],
)
def test_identifier_rule(value: str, ok: bool) -> None:
    assert identifiers.is_valid(value) is ok
    ident, reasons = identifiers.vet_identity(DeviceIdentity("zfy", value, "devinfo"))
    assert (reasons == []) is ok
    assert identifiers.is_valid(ident.serial)
    if not ok:
        assert ident.serial == identifiers.stand_in(value) and "from devinfo" in reasons[0]
