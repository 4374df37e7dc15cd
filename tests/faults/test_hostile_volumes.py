"""Hostile volumes: the agent ingests what is legitimate, refuses the rest with a reason, never
writes outside its data dir, never follows a link out of the volume, and stays within a
memory bound (peak RSS of the agent subprocess, measured with os.wait4)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from faults.harness import ROOT, Recorder, check_invariants, peak_rss, sha256_of
from fixtures.station import ledger_rows, wait_for
from toolcheck import unavailable

RSS_BOUND_MIB = 160  # the agent's own budget is < 150 MB for ingest (bench/ingest.py)
BULK_EVIDENCE = 200
BULK_IGNORED = 2500

ODD_NAMES = [
    b"..MP4",
    b"...MP4",
    b".MP4",
    b"..\\..\\..\\etc\\passwd.MP4",
    b"%2e%2e%2fetc%2fpasswd.MP4",
    b"\xc0\xaf..\xc0\xafetc.MP4",  # overlong UTF-8 '/'
    b"\xef\xbc\x8f..\xef\xbc\x8fetc.MP4",  # fullwidth solidus
    b"line\nbreak.MP4",
    b"cr\rreturn.MP4",
    b"\x1b[31mred\x1b[0m.MP4",  # terminal escape in a name
    b"bad\xff\xfe name.MP4",
    b"\xd6\xd0\xce\xc4GBK.MP4",  # GBK, not UTF-8
    b"-rf --no-preserve-root.MP4",
    b"star*?[x].MP4",
    b"L" * 251 + b".MP4",  # 255 bytes
    "长".encode() * 83 + b".MP4",  # 253 bytes of UTF-8
]


def _write(path: bytes, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def _nest(top: Path, depth: int, leaf: bytes, data: bytes) -> None:
    """A directory chain `depth` levels deep with `leaf` at the bottom (relative paths keep
    every syscall under PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out = os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)


def _hostile_volume(vol: Path, decoy: Path) -> tuple[dict[bytes, str], set[str]]:
    """Fill `vol` (already holding real clips). Returns (legit rel path -> SHA-256, paths
    that must be refused)."""
    d = vol / "DCIM"
    legit: dict[bytes, str] = {}
    for p in d.rglob("*.MP4"):
        legit[os.fsencode(p.relative_to(vol))] = sha256_of(p)
    for i, name in enumerate(ODD_NAMES):
        data = f"odd {i}".encode()
        _write(os.path.join(os.fsencode(d), name), data)
        legit[b"DCIM/" + name] = sha256_of(os.path.join(os.fsencode(d), name))
    for name in (b"empty.MP4", b"empty.JPG"):
        _write(os.path.join(os.fsencode(d), name), b"")
        legit[b"DCIM/" + name] = sha256_of(os.path.join(os.fsencode(d), name))
    (d / "BULK").mkdir()
    for i in range(BULK_EVIDENCE):
        rel = f"DCIM/BULK/clip{i:04d}.MP4".encode()
        _write(os.path.join(os.fsencode(vol), rel), f"bulk {i}".encode())
        legit[rel] = sha256_of(os.path.join(os.fsencode(vol), rel))
    (vol / "SYSTEM" / "LOG").mkdir(parents=True, exist_ok=True)
    for i in range(BULK_IGNORED):
        (vol / "SYSTEM" / "LOG" / f"l{i:05d}.TXT").write_text("x")
    _nest(d, 20, b"ok.MP4", b"deep but fine")
    legit[b"DCIM/" + b"d/" * 20 + b"ok.MP4"] = sha256_of(d / ("d/" * 20 + "ok.MP4"))
    _nest(vol / "SYSTEM", 40, b"too-deep.MP4", b"below the depth limit")
    with open(d / "huge.MP4", "wb") as fh:
        fh.truncate(10 << 30)  # 10 GB, sparse
    os.symlink("/etc/passwd", d / "passwd.MP4")
    os.symlink("/etc", vol / "etc")
    os.symlink(decoy / "secret.MP4", d / "out.MP4")
    os.symlink(os.path.relpath(decoy / "secret.MP4", d), d / "rel.MP4")
    os.symlink("loop.MP4", d / "loop.MP4")
    os.symlink(decoy, d / "dirlink")
    os.mkfifo(d / "fifo.MP4")
    os.mknod(d / "zero.MP4", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero: endless
    os.mknod(d / "blk.MP4", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    cwd = os.getcwd()
    os.chdir(d)  # AF_UNIX paths are short: bind relative to the directory
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind("sock.MP4")
        sock.close()
    finally:
        os.chdir(cwd)
    # Garbage device info: binary noise, NULs, a path-like serial.
    (vol / "DEVINFO.TXT").write_bytes(
        random.Random(7).randbytes(3000) + b"\nserial=../../etc\x00\nvendor=\xff\xfe\n"
    )
    refused = {
        "DCIM/huge.MP4", "DCIM/passwd.MP4", "etc", "DCIM/out.MP4", "DCIM/rel.MP4",
        "DCIM/loop.MP4", "DCIM/dirlink", "DCIM/fifo.MP4", "DCIM/zero.MP4", "DCIM/blk.MP4",
        "DCIM/sock.MP4", "SYSTEM/" + "d/" * 23 + "d",
    }  # fmt: skip
    return legit, refused


def _snapshot(top: Path, skip: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(top):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirs[:] = []
            continue
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            if Path(p) == skip:
                continue
            st = os.lstat(p)
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _ingest_measured(config: Path, vol: Path, home: Path) -> tuple[int, dict, float, str]:
    """Run `ingest --json` with an empty HOME and cwd; returns (rc, result, peak RSS MiB)."""
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state")}
    env["PYTHONPATH"] = str(ROOT)
    out, err = home / "stdout", home / "stderr"
    cmd = [sys.executable, "-m", "agent", "--config", str(config), "ingest", str(vol), "--json"]
    with open(out, "wb") as fo, open(err, "wb") as fe:
        rc, rss = peak_rss(cmd, home.parent / "rss.json", stdout=fo, stderr=fe, cwd=home, env=env)
    text = out.read_text(encoding="utf-8")
    result = json.loads(text) if text.strip() else {}
    for f in (out, err):
        f.rename(home.parent / f.name)  # keep HOME empty for the "wrote nothing" check
    return rc, result, rss, err.name


def test_hostile_volume_ingests_the_legit_refuses_the_rest(make_station, bodycam, tmp_path):
    if os.geteuid() != 0:
        unavailable("device nodes and loop mounts need root")
    st = make_station("max_file_bytes = 1073741824", ledger=False)
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "secret.MP4").write_bytes(b"outside the volume: must never be read")
    vol, _ = bodycam(out=tmp_path / "vol", serial="ZFY0900", clips=2)
    legit, refused = _hostile_volume(vol, decoy)
    home = tmp_path / "home"
    home.mkdir()
    st.data_dir.mkdir()  # its own creation is the one write allowed next to it
    before = _snapshot(tmp_path, st.data_dir)
    before.pop(str(home), None)

    rc, result, rss, _ = _ingest_measured(st.config_path, vol, home)
    assert rc == 0, (home.parent / "stderr").read_text()
    print(f"hostile ingest: peak RSS {rss:.0f} MiB, {result['files']} evidence files")
    assert rss < RSS_BOUND_MIB

    rows = ledger_rows(st, "SELECT r.*, d.serial, d.serial_source FROM recordings r"
                       " JOIN devices d ON d.id = r.device_id")  # fmt: skip
    got = {bytes(r["source_path_raw"]): r for r in rows}
    assert set(got) == set(legit)
    assert all(got[k]["state"] == "spooled" and got[k]["sha256"] == v for k, v in legit.items())
    assert {r["serial"] for r in rows} == {"ZFY0900"}  # garbage device info was not believed
    assert {r["serial_source"] for r in rows} == {"filename"}
    issues = {i["path"]: i for i in result["issues"] if i["kind"] != "ignored"}
    assert set(issues) == refused, set(issues) ^ refused
    assert all(i["kind"] == "refused" and i["reason"] for i in issues.values())
    assert "max_file_bytes" in issues["DCIM/huge.MP4"]["reason"]
    assert issues["DCIM/out.MP4"]["reason"].startswith("symlink")
    assert "FIFO" in issues["DCIM/fifo.MP4"]["reason"]
    assert "device node" in issues["DCIM/zero.MP4"]["reason"]
    ignored = [i for i in result["issues"] if i["kind"] == "ignored"]
    assert len(ignored) >= BULK_IGNORED
    # Shown escaped, never raw control characters (logs and terminals stay intact).
    assert all("\n" not in r["source_path"] and "\x1b" not in r["source_path"] for r in rows)

    # No link followed: the decoy's bytes are nowhere in the ledger or the spool.
    secret = sha256_of(decoy / "secret.MP4")
    assert secret not in {r["sha256"] for r in rows}
    # Nothing written outside the data dir: volume, decoy, config dir, HOME and cwd unchanged.
    after = _snapshot(tmp_path, st.data_dir)
    after.pop(str(home), None)
    for name in ("stdout", "stderr"):
        after.pop(str(tmp_path / name), None)
    assert after == before
    assert os.listdir(home) == []
    rec = Recorder.of(vol, "ZFY0900", legit)
    problems = check_invariants(st.config_path, [rec], final=True, release_after="never")
    assert not problems, "\n".join(problems)


def test_exfat_image_through_exfat_fuse(make_station, bodycam, exfat_volume, tmp_path):
    st = make_station()
    src, _ = bodycam(out=tmp_path / "src", serial="ZFY0901", clips=2)
    d = src / "DCIM"
    (d / "空.MP4").write_bytes(b"")
    (d / ("执法记录" * 20 + ".MP4")).write_bytes(b"a long name")  # 244 bytes of UTF-8
    (d / "a b;c'd.MOV").write_bytes(b"punctuation")
    for i in range(300):
        (d / f"n{i:03d}.JPG").write_bytes(f"photo {i}".encode())
    _nest(d, 30, b"deep.MP4", b"too deep")
    (src / "DEVINFO.TXT").write_bytes(b"\x00\xff garbage \x00")
    point = st.mount_root / "REC0901"
    point.mkdir()
    exfat_volume(src, point, "REC0901")
    rec = Recorder.of(point, "ZFY0901")
    rec.adopt()
    for rel in [k for k in rec.manifest if k.count(b"/") > 24]:
        del rec.manifest[rel]  # below the depth limit: refused, not evidence to expect
    home = tmp_path / "home"
    home.mkdir()

    rc, result, rss, _ = _ingest_measured(st.config_path, point, home)
    assert rc == 0, (home.parent / "stderr").read_text()
    assert rss < RSS_BOUND_MIB
    assert result["serial"] == "ZFY0901" and result["copied"] == len(rec.manifest)
    assert any("nested deeper" in i["reason"] for i in result["issues"])
    problems = check_invariants(st.config_path, [rec], final=True, release_after="never")
    assert not problems, "\n".join(problems)


@pytest.fixture
def deep_dir(station):
    deep = station.mount_root / "DEEP0001"
    yield deep
    # pytest's own clean-up of old temp dirs recurses: it must never meet this tree (and it
    # would, in every later run on this machine).
    subprocess.run(["rm", "-rf", str(deep)], check=True)


def test_a_volume_nested_a_thousand_levels_deep_does_not_stop_detection(
    station, daemon, bodycam, deep_dir
):
    deep = deep_dir
    (deep / "DCIM").mkdir(parents=True)
    (deep / "DEVINFO.TXT").write_text("serial=DEEP0001\n")
    (deep / "DCIM" / "top.MP4").write_bytes(b"shallow clip")
    _nest(deep / "DCIM", 1100, b"bottom.MP4", b"far down")
    daemon(station)
    vol, clips = bodycam(serial="ZFY0902", clips=1)
    shutil.copytree(vol, station.mount_root / "ZFY0902")
    wait_for(
        lambda: len(ledger_rows(station, "SELECT 1 FROM recordings WHERE sha256 IS NOT NULL")) == 2,
        timeout=60,
        what="both volumes ingested while a hostile one is docked",
    )
    serials = {r["serial"] for r in ledger_rows(station, "SELECT serial FROM devices")}
    assert serials == {"DEEP0001", "ZFY0902"}
