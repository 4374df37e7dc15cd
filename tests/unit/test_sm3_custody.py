"""The custody chain under crypto.suite = "sm" (issue 19): an SM3 chain next to SHA-256 that
starts at a recorded switch, SM2 co-signed checkpoints, and verify catching an SM3 value that
was altered or removed while the SHA-256 chain still holds."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.core import sm2sig
from agent.ledger import appendonly, custody, sm3chain, sm3verify
from agent.ledger.db import Ledger


def _ledger(tmp_path: Path, suite: str | None) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite3", {}, "ST1")
    ledger.identify("ST1", "Asia/Shanghai", suite)
    return ledger


def _events(ledger: Ledger, n: int, type_: str = "test.event") -> None:
    for i in range(n):
        with ledger.tx() as conn:
            custody.append(conn, type_, {"i": i, "名": "值"})


def _tamper(ledger: Ledger, sql: str, args: tuple[object, ...]) -> None:
    """What an attacker with the file does: drop the guard, edit, put the guard back."""
    conn = ledger.connect()
    conn.execute("DROP TRIGGER custody_no_update")
    conn.execute(sql, args)
    conn.execute(appendonly.GUARDS["custody_no_update"])


def test_old_chain_stays_valid_and_sm3_starts_at_the_switch(tmp_path):
    intl = _ledger(tmp_path, "intl")
    _events(intl, 3)
    intl.close()
    sm = _ledger(tmp_path, "sm")
    _events(sm, 3)
    rows = sm.connect().execute("SELECT * FROM custody ORDER BY seq").fetchall()
    assert [r["sm3"] is None for r in rows] == [True] * 3 + [False] * 4
    switch = rows[3]
    assert switch["type"] == sm3chain.SUITE_EVENT
    assert json.loads(switch["payload"])["suite"] == "sm"
    # each SM3 value is SM3 over the event's own canonical JSON with the previous SM3 value
    prev = "0" * 64
    for r in rows[3:]:
        body = {"seq": r["seq"], "at": r["at"], "type": r["type"], "recording_id": None,
                "actor": r["actor"], "payload": json.loads(r["payload"]), "alg": "sm3",
                "prev": prev}  # fmt: skip
        data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert r["sm3"] == hashlib.new("sm3", data.encode("utf-8")).hexdigest()
        prev = r["sm3"]
    n, problems = custody.verify_chain(sm.connect())
    assert (n, problems) == (7, [])
    report = sm3verify.run(sm.connect())
    assert (report.events, report.first, report.problems) == (4, 4, [])
    assert appendonly.guard_problems(sm.connect()) == []  # migration 0019 kept the triggers


def test_back_to_intl_ends_the_sm3_chain(tmp_path):
    _events(_ledger(tmp_path, "sm"), 2)
    back = _ledger(tmp_path, "intl")
    _events(back, 2)
    rows = back.connect().execute("SELECT type, sm3 FROM custody ORDER BY seq").fetchall()
    assert [(r[0], r[1] is None) for r in rows] == [
        (sm3chain.SUITE_EVENT, False), ("test.event", False), ("test.event", False),
        (sm3chain.SUITE_EVENT, True), ("test.event", True), ("test.event", True),
    ]  # fmt: skip
    assert sm3verify.run(back.connect()).problems == []


@pytest.mark.parametrize(
    ("sql", "args", "message"),
    [
        (
            "UPDATE custody SET sm3 = ? WHERE seq = 3",
            ("ab" * 32,),
            "event 3 (test.event) was altered: SM3 mismatch",
        ),
        (
            "UPDATE custody SET sm3 = NULL WHERE seq = 3",
            (),
            "has no SM3 value inside the SM3 chain",
        ),
        ("UPDATE custody SET sm3 = ? WHERE seq = 1", ("ab" * 32,), "carries an SM3 value outside"),
    ],  # fmt: skip
)
def test_tampered_sm3_values_fail_while_sha256_holds(tmp_path, sql, args, message):
    ledger = _ledger(tmp_path, "intl")
    _events(ledger, 1)
    ledger.identify("ST1", "Asia/Shanghai", "sm")
    _events(ledger, 3)  # seq 2 is the switch, 3..5 carry SM3
    _tamper(ledger, sql, args)
    conn = ledger.connect()
    assert custody.verify_chain(conn)[1] == []  # SHA-256 does not cover the SM3 column
    problems = sm3verify.run(conn).problems
    assert problems and message in problems[0].message, problems


def test_checkpoint_is_cosigned_with_sm2_and_names_the_sm3_head(tmp_path):
    ledger = _ledger(tmp_path, "sm")
    _events(ledger, 2)
    key, (sk, pk) = Ed25519PrivateKey.generate(), sm2sig.generate()
    with ledger.tx() as conn:
        cp = custody.checkpoint(conn, key, "ST1", (sk, pk))
    conn = ledger.connect()
    head = conn.execute("SELECT sm3 FROM custody ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert cp["statement"]["head_sm3"] == head
    assert cp["statement"]["sm2_key"] == sm3chain.sm2_fingerprint(pk)
    statement = custody.latest_checkpoint(conn)
    assert statement is not None and statement["sm2_signature"] == cp["sm2_signature"]
    assert custody.verify_checkpoints(conn, key.public_key()) == []  # Ed25519 still holds
    report = sm3verify.run(conn)
    assert (report.sm2_checkpoints, report.checkpoint_problems) == (1, [])
    # a checkpoint whose SM2 signature is swapped for one by another SM2 key
    other_sk, other_pk = sm2sig.generate()
    with ledger.tx() as conn:
        _events_in(conn)
        custody.checkpoint(conn, key, "ST1", (other_sk, other_pk))
    conn.execute("DROP TRIGGER checkpoints_no_update")
    conn.execute("UPDATE checkpoints SET sm2_public_key = ? WHERE seq = 2",
                 (sm2sig.public_pem(pk),))  # fmt: skip
    conn.execute(appendonly.GUARDS["checkpoints_no_update"])
    report = sm3verify.run(conn)
    assert report.sm2_checkpoints == 1
    assert "is not the key the statement names" in report.checkpoint_problems[0].message


def _events_in(conn: sqlite3.Connection) -> None:
    custody.append(conn, "test.event", {"more": True})
