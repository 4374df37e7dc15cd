"""Dock console PINs and the console channel at the gate, with a real ledger, real argon2id
and the daemon's own API server on a real Unix socket (no browser: tests/integration/
test_console.py has that)."""

from __future__ import annotations

import json

import pytest

from agent.access import pins
from agent.config.console import ConsoleConfig
from agent.console.gateclient import GateError, call
from agent.daemon.api_console import Tickets
from fixtures.access import ensure_gate
from fixtures.station import ledger_rows

REGISTER = (
    "officer_id,login,name,roles,cert_no,active\n"
    "A001,root,管理员,admin,JZ-A001,1\n"
    "310001,zhangsan,张三,officer,JZ-310001,1\n"
    "310009,wangjiu,王九,officer,JZ-310009,0\n"
)


def _station(make_station, console_login="root"):
    st = make_station(f'\n[console]\nlogin = "{console_login}"\npin_backoff_seconds = 5\n')
    (st.dir / "operators.csv").write_text(REGISTER, encoding="utf-8")
    ensure_gate(st)
    return st


def _custody(st, kind):
    rows = ledger_rows(
        st, "SELECT payload, actor FROM custody WHERE type = ? ORDER BY seq", (kind,)
    )
    return [(json.loads(r["payload"]), r["actor"]) for r in rows]


def test_pin_is_argon2id_with_its_own_salt_and_checks():
    a, b = pins.hash_pin("246810"), pins.hash_pin("246810")
    assert a.startswith("$argon2id$") and a != b  # a random salt per hash
    assert pins.check_hash(a, "246810") and not pins.check_hash(a, "246811")
    assert not pins.check_hash("not a hash", "246810")
    for bad in ("123", "12ab56", "1234567890123"):
        with pytest.raises(pins.PinError):
            pins.hash_pin(bad)


def test_set_pin_login_backoff_and_unlock_through_the_gate(make_station):
    st = _station(make_station)
    cfg = st.cfg()
    call(cfg, "pin.set", {"officer_id": "310001", "pin": "246810"})
    row = ledger_rows(st, "SELECT * FROM console_pins WHERE officer_id = '310001'")[0]
    assert row["pin_hash"].startswith("$argon2id$") and "246810" not in json.dumps(row)
    assert _custody(st, "console.pin_set")[0] == ({"officer_id": "310001"}, "operator:A001")

    wrong = call(cfg, "console.login", {"officer_id": "310001", "pin": "000000"})
    assert wrong == {"granted": False, "retry_after_s": 5.0}
    # Within the back-off even the right PIN waits, and the try is not counted again.
    early = call(cfg, "console.login", {"officer_id": "310001", "pin": "246810"})
    assert early["granted"] is False and 0 < early["retry_after_s"] <= 5
    failed = _custody(st, "console.login_failed")
    assert [(p["failures"], p["retry_after_s"]) for p, _ in failed] == [(1, 5.0)]

    out = call(cfg, "pin.unlock", {"officer_id": "310001"})
    assert out == {"officer_id": "310001", "failures": 1}
    ok = call(cfg, "console.login", {"officer_id": "310001", "pin": "246810"})
    assert ok["granted"] and ok["officer_id"] == "310001" and ok["name"] == "张三"
    assert len(ok["session"]) >= 40
    assert _custody(st, "console.login")[0][0] == {"officer_id": "310001"}
    # The ticket is the officer for console reads; a made-up one is refused.
    assert call(cfg, "console.recordings", {}, ok["session"]) == []
    with pytest.raises(GateError) as exc:
        call(cfg, "console.recordings", {}, "forged")
    assert exc.value.exit_code == 77 and "expired" in str(exc.value)


def test_inactive_or_unknown_officers_never_log_in_and_are_recorded(make_station):
    st = _station(make_station)
    cfg = st.cfg()
    got = call(cfg, "console.login", {"officer_id": "310009", "pin": "246810"})  # inactive
    assert got == {"granted": False, "retry_after_s": 5.0}
    # Made-up ids share one back-off: a second try at once is refused and not recorded.
    got = call(cfg, "console.login", {"officer_id": "999999", "pin": "246810"})
    assert got["granted"] is False and 0 < got["retry_after_s"] <= 5
    failed = _custody(st, "console.login_failed")
    assert [(p["officer_id"], p["reason"]) for p, _ in failed] == [
        ("310009", "not an active operator in the register")
    ]
    assert ledger_rows(st, "SELECT * FROM console_pins") == []  # no rows for strangers
    # A real officer is not held up by the strangers' back-off.
    call(cfg, "pin.set", {"officer_id": "310001", "pin": "246810"})
    assert call(cfg, "console.login", {"officer_id": "310001", "pin": "246810"})["granted"]
    with pytest.raises(GateError) as exc:
        call(cfg, "pin.set", {"officer_id": "999999", "pin": "246810"})
    assert "not in the operator register" in str(exc.value)


def test_only_the_console_login_speaks_as_the_console(make_station):
    st = _station(make_station, console_login="evidence-console")  # the tests run as root
    with pytest.raises(GateError) as exc:
        call(st.cfg(), "console.login", {"officer_id": "310001", "pin": "246810"})
    assert exc.value.exit_code == 77 and "console.login" in str(exc.value)
    with pytest.raises(GateError) as exc:
        call(st.cfg(), "tag", {"refs": ["x"], "fields": {"case_number": "1"}}, "any-ticket")
    assert exc.value.exit_code == 77
    assert _custody(st, "console.login_failed") == []


def test_tickets_expire_after_the_idle_timeout(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("agent.daemon.api_console.time.monotonic", lambda: now[0])
    t = Tickets(timeout_s=60)
    ticket = t.issue("310001")
    now[0] += 59
    assert t.officer(ticket) == "310001"  # use keeps it alive
    now[0] += 59
    assert t.officer(ticket) == "310001"
    now[0] += 61
    assert t.officer(ticket) is None


def test_console_binds_loopback_unless_a_certificate_is_configured(tmp_path):
    assert ConsoleConfig().bind == "127.0.0.1"
    with pytest.raises(ValueError, match="tls_cert_file"):
        ConsoleConfig(bind="0.0.0.0")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    assert ConsoleConfig(bind="0.0.0.0", tls_cert_file=cert, tls_key_file=key).port == 8470
    with pytest.raises(ValueError, match="go together"):
        ConsoleConfig(tls_cert_file=cert)


def test_copy_progress_reports_percent_and_speed_of_the_file_being_copied(monkeypatch):
    from agent.daemon.api_console import CopyProgress

    now = [100.0]
    monkeypatch.setattr("agent.daemon.api_console.time.monotonic", lambda: now[0])
    p = CopyProgress()
    p.update("ZFY0001", "rec-1", 0, 8 << 20)
    now[0] += 2
    p.update("ZFY0001", "rec-1", 4 << 20, 8 << 20)
    got = p.snapshot()["ZFY0001"]
    assert got["percent"] == 50.0 and got["bytes_per_s"] == 2 << 20 and got["recording"] == "rec-1"
    p.update("ZFY0001", "rec-2", 1 << 20, 2 << 20)  # the next file starts its own speed
    assert p.snapshot()["ZFY0001"]["bytes_per_s"] is None
    p.update("ZFY0001", "rec-2", 2 << 20, 2 << 20)  # done: no longer in progress
    assert p.snapshot() == {}
    p.update("ZFY0002", "rec-3", 1, 10)
    now[0] += CopyProgress.STALE_S + 1  # a copy that stopped reporting (recorder pulled)
    assert p.snapshot() == {}
