"""Acceptance of encryption at rest (issue 19, first slice): the data dir without the key reveals
no footage, verify and export pass with it, a damaged chunk fails verify naming the recording,
rotation leaves the ciphertext bodies untouched, the recovery key restores access."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from fixtures.probe import ffprobe_finds_media
from fixtures.station import Station, ledger_rows

HEADER = 1024  # agent.core.envelope.HEADER_SIZE
STEP = (1 << 20) + 16  # one sealed chunk


def _station(make_station, tmp_path: Path) -> tuple[Station, Path, Path]:
    keys, recovery = tmp_path / "etc-keys", tmp_path / "agency"
    st = make_station(
        f'[crypto]\nkey_file = "{keys / "encryption.key"}"\n'
        f'recovery_public_key = "{recovery / "recovery.pub"}"\n'
    )
    out = st.cli("keys", "encryption", "init", "--recovery-out", str(recovery), check=True)
    assert "recovery.key" in out.stdout and (keys / "encryption.key").stat().st_mode & 0o077 == 0
    return st, keys / "encryption.key", recovery / "recovery.key"


def _ingest(st: Station, bodycam, big: bool = False) -> list[bytes]:
    vol, clips = bodycam(serial="ZFY1900", clips=2, seconds=1.0)
    if big:  # a recording of several chunks (corrupt footage is evidence all the same)
        extra = clips[0].parent / "ZFY1900_100001_20261203213859_0009.MP4"
        extra.write_bytes(clips[0].read_bytes() + os.urandom(3 * (1 << 20) + 4321))
        clips.append(extra)
    st.cli("ingest", str(vol), check=True)
    return [c.read_bytes() for c in clips]


def _spool(st: Station) -> list[tuple[str, Path]]:
    rows = ledger_rows(st, "SELECT id, spool_path FROM recordings ORDER BY size DESC")
    return [(r["id"], st.data_dir / "spool" / r["spool_path"]) for r in rows]


def _exported(target: Path, ids: list[str]) -> list[bytes]:
    return sorted(p.read_bytes() for p in target.iterdir() if p.name.startswith(tuple(ids)))


def _samples(clip: bytes) -> list[bytes]:
    return [clip[i : i + 24] for i in (0, len(clip) // 4, len(clip) // 2, len(clip) - 24)]


def test_data_dir_without_key_reveals_no_footage(make_station, tmp_path, bodycam):
    st, key_file, _ = _station(make_station, tmp_path)
    clips = _ingest(st, bodycam)
    files = [p for p in st.data_dir.rglob("*") if p.is_file()]
    assert len(_spool(st)) == 2
    for path in files:
        data = path.read_bytes()
        for clip in clips:
            assert not any(s in data for s in _samples(clip)), f"clip bytes in {path}"
    for _, copy in _spool(st):
        assert not ffprobe_finds_media(copy), f"ffprobe read {copy}"
    rows = ledger_rows(st, "SELECT spool_key_id FROM recordings")
    assert all(r["spool_key_id"] for r in rows)
    # With the key: verify re-hashes the plaintext, export writes the footage as it was, a
    # backup checks the copies by their plaintext and carries ciphertext only, and no key.
    assert st.cli("verify").returncode == 0
    backup = tmp_path / "backup"
    st.cli("backup", str(backup), check=True)
    key_text = key_file.read_text().split("kek ")[1].strip()
    for path in (p for p in backup.rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert key_text.encode() not in data and base64.b64decode(key_text) not in data
        assert not any(s in data for clip in clips for s in _samples(clip)), path
    ids = [rid for rid, _ in _spool(st)]
    out = tmp_path / "export"
    st.cli("export", *ids, "--to", str(out), "--reason", "复议", "--operator", "OP1", check=True)
    assert _exported(out, ids) == sorted(clips)
    # The data dir copied without the key opens nothing: verify names the key to restore.
    key_file.rename(key_file.with_suffix(".away"))
    report = json.loads(st.cli("verify", "--json").stdout)
    assert {p["subject"] for p in report["problems"]} == set(ids)
    assert all("crypto.key_file" in p["message"] for p in report["problems"])


@pytest.mark.parametrize("damage", ["flip", "drop", "reorder", "truncate"])
def test_damaged_chunk_fails_verify_naming_the_recording(make_station, tmp_path, bodycam, damage):
    st, _, _ = _station(make_station, tmp_path)
    _ingest(st, bodycam, big=True)
    rid, path = _spool(st)[0]
    data = bytearray(path.read_bytes())
    assert len(data) > HEADER + 3 * STEP
    if damage == "flip":
        data[HEADER + STEP + 100] ^= 0x01
    elif damage == "drop":
        del data[HEADER + STEP : HEADER + 2 * STEP]
    elif damage == "reorder":
        a, b = data[HEADER : HEADER + STEP], data[HEADER + STEP : HEADER + 2 * STEP]
        data[HEADER : HEADER + 2 * STEP] = b + a
    else:
        data = data[: HEADER + 3 * STEP]
    os.chmod(path, 0o640)
    path.write_bytes(bytes(data))
    out = st.cli("verify", "--json")
    assert out.returncode != 0
    problems = json.loads(out.stdout)["problems"]
    assert [p["subject"] for p in problems] == [rid]
    assert "fails authentication" in problems[0]["message"]
    assert rid in st.cli("verify").stdout


def _bodies(st: Station) -> dict[str, str]:
    return {rid: hashlib.sha256(p.read_bytes()[HEADER:]).hexdigest() for rid, p in _spool(st)}


def test_rotation_rewraps_and_leaves_bodies_alone(make_station, tmp_path, bodycam):
    st, key_file, _ = _station(make_station, tmp_path)
    _ingest(st, bodycam, big=True)
    before, heads = _bodies(st), {rid: p.read_bytes()[:HEADER] for rid, p in _spool(st)}
    old_key = key_file.read_bytes()
    out = st.cli("keys", "encryption", "rotate", check=True)
    assert "3 spool copies" in out.stdout
    assert _bodies(st) == before
    assert all(p.read_bytes()[:HEADER] != heads[rid] for rid, p in _spool(st))
    assert key_file.read_bytes() != old_key and len(key_file.read_text().split("kek ")) == 2
    assert st.cli("verify").returncode == 0
    shown = json.loads(st.cli("keys", "encryption", "show", "--json", check=True).stdout)
    assert shown["spool_copies"] == {shown["key_ids"][0]: 3}
    events = ledger_rows(st, "SELECT payload FROM custody WHERE type='crypto.key_rotated'")
    assert json.loads(events[0]["payload"])["rewrapped"] == 3


def test_recovery_key_restores_access_on_a_fresh_machine(make_station, tmp_path, bodycam):
    st, _, recovery_key = _station(make_station, tmp_path)
    clips = _ingest(st, bodycam)
    before = _bodies(st)
    backup = tmp_path / "backup"
    st.cli("backup", str(backup), check=True)
    # The old PC is gone with its station key; a fresh one gets the backup and the agency's
    # recovery key, and no station key at all.
    new_key = tmp_path / "new-etc" / "encryption.key"
    new = make_station(f'[crypto]\nkey_file = "{new_key}"\n', name="new-pc", ledger=False)
    new.cli("restore", str(backup), check=True)
    assert new.cli("verify").returncode != 0
    out = new.cli("keys", "encryption", "recover", "--recovery-key", str(recovery_key))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 spool copies" in out.stdout and new_key.exists()
    assert _bodies(new) == before
    assert new.cli("verify").returncode == 0
    ids = [rid for rid, _ in _spool(new)]
    dest = tmp_path / "export"
    new.cli("export", *ids, "--to", str(dest), "--reason", "复议", "--operator", "OP1", check=True)
    assert _exported(dest, ids) == sorted(clips)
    assert ledger_rows(new, "SELECT seq FROM custody WHERE type='crypto.recovered'")
    # The copies now carry a wrap for the new station key and still one for the recovery key.
    shown = json.loads(new.cli("keys", "encryption", "show", "--json", check=True).stdout)
    assert shown["spool_copies"] == {shown["key_ids"][0]: 2}


def test_required_key_stops_the_daemon(make_station, tmp_path):
    missing = tmp_path / "nowhere" / "encryption.key"
    st = make_station(f'[crypto]\nencrypt = "required"\nkey_file = "{missing}"\n')
    out = st.cli("run", timeout=60)
    assert out.returncode != 0 and str(missing) in out.stderr


def test_check_config_on_keys(make_station, tmp_path):
    from agent.station import kek

    plain = make_station(f'[crypto]\nkey_file = "{tmp_path / "none" / "encryption.key"}"\n')
    out = plain.cli("check-config")
    assert out.returncode == 0 and "written in plaintext" in out.stderr
    inside = make_station(name="inside")
    key = inside.data_dir / "encryption.key"
    with inside.config_path.open("a", encoding="utf-8") as f:
        f.write(f'\n[crypto]\nkey_file = "{key}"\n')
    refused = inside.cli("keys", "encryption", "init")
    assert refused.returncode != 0 and "inside station.data_dir" in refused.stderr
    kek.write_ring(key, [os.urandom(32)])
    out = inside.cli("check-config")
    assert out.returncode == 78 and "crypto.key_file" in out.stderr
