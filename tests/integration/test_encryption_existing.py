"""Plaintext spool copies of an upgraded station are encrypted in the background at a bounded
rate, and a plaintext copy is only ever replaced by an encrypted copy that verified (issue 19)."""

from __future__ import annotations

import json
import signal

from agent.core import sealedio
from agent.ingest import sealold
from agent.station import kek
from fixtures.station import ledger_rows


def _plain_station(make_station, bodycam, tmp_path):
    key = tmp_path / "etc-keys" / "encryption.key"
    st = make_station(f'[crypto]\nkey_file = "{key}"\nencrypt_existing_bytes_per_second = 1000\n')
    vol, clips = bodycam(serial="ZFY1920", clips=2, seconds=1.0)
    st.cli("ingest", str(vol), check=True)  # no key yet: plaintext copies, as before
    rows = ledger_rows(st, "SELECT id, spool_path, spool_key_id FROM recordings ORDER BY id")
    assert [r["spool_key_id"] for r in rows] == [None, None]
    copies = [st.data_dir / "spool" / r["spool_path"] for r in rows]
    assert sorted(p.read_bytes() for p in copies) == sorted(c.read_bytes() for c in clips)
    st.cli("keys", "encryption", "init", check=True)
    return st, copies, clips


def test_cut_off_pass_keeps_the_plaintext_and_a_rerun_encrypts(make_station, bodycam, tmp_path):
    st, copies, clips = _plain_station(make_station, bodycam, tmp_path)
    before = {p: p.read_bytes() for p in copies}
    crash = {"EVIDENCE_AGENT_CRASHPOINT": "sealold.before_rename"}
    out = st.cli("keys", "encryption", "encrypt-existing", env=crash)
    assert out.returncode == -signal.SIGKILL
    assert {p: p.read_bytes() for p in copies} == before  # nothing replaced, nothing lost
    assert st.cli("verify").returncode == 0
    out = st.cli("keys", "encryption", "encrypt-existing", check=True)
    assert "2 plaintext spool copies encrypted, 0 left" in out.stdout
    assert all(sealedio.is_sealed(p) for p in copies)
    assert not any(p.is_file() for p in (st.data_dir / "spool" / ".sealing").iterdir())
    for p in copies:
        assert not any(clip.read_bytes()[200:240] in p.read_bytes() for clip in clips)
    assert st.cli("verify").returncode == 0
    events = ledger_rows(st, "SELECT payload FROM custody WHERE type='recording.encrypted'")
    assert len(events) == 2 and all(json.loads(e["payload"])["key"] for e in events)
    shown = json.loads(st.cli("keys", "encryption", "show", "--json", check=True).stdout)
    assert shown["spool_copies"] == {shown["key_ids"][0]: 2}


def test_daemon_step_encrypts_one_copy_per_pass_at_the_rate(make_station, bodycam, tmp_path):
    st, copies, _ = _plain_station(make_station, bodycam, tmp_path)
    ctx = st.context()
    assert ctx.seal is not None and kek.keyring(ctx.cfg) is not None
    sizes = {r["id"]: r["size"] for r in ledger_rows(st, "SELECT id, size FROM recordings")}
    wait = sealold.step(ctx)
    first = min(sizes)  # pending() goes in id order
    assert wait == sizes[first] / 1000  # the bound: the next pass waits size / rate
    assert sum(sealedio.is_sealed(p) for p in copies) == 1
    assert sealold.step(ctx) > 0 and all(sealedio.is_sealed(p) for p in copies)
    assert sealold.step(ctx) == sealold.IDLE_SECONDS
    assert st.cli("verify").returncode == 0
