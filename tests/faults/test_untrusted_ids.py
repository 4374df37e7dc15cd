"""Fault matrix: recorder-supplied identifiers that are dot names (`.tmp`, `..`).

On v0.1.0 a serial of `.tmp` (from the USB info block, a device info file, a file name through
a naming pattern, or the volume label) put spool copies into `<spool>/.tmp`, which crash
recovery emptied without asking the ledger, and `..` wrote copies into the data dir itself;
with release_after = "spooled" the recorder was erased while the only station copy was gone.

Each test builds that situation and shows the fix: the identifier is refused (the recorder's
recordings are quarantined with the reason, under a stand-in serial the agent derives), the
copies are laid out by device id, recovery deletes nothing, and nothing leaves the recorder
without a durable copy.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from agent.archive.stores import open_store
from agent.core import identifiers
from agent.ingest.ingestor import Ingestor
from agent.recorders.driverloop import DriverRunner
from agent.recorders.linker import Linker
from agent.retention.release import Releaser
from agent.station.context import Context
from drivers.base import DriverEnv
from drivers.zfy_usb import ZfyUsbDriver, ZfyUsbSettings
from faults.harness import Recorder, check_invariants, sha256_of
from fixtures.recorders import PASSWORD, UsbSim
from fixtures.station import Station, ledger_rows, wait_for
from simulators.usb_recorder import SimUsbRecorder

SPOOLED = 'release_after = "spooled"\n'
LOOSE_PATTERN = """
[[ingest.naming_patterns]]
name = "loose"
regex = '^(?P<serial>[^_]+)_(?P<officer>[^_]+)_(?P<start>\\d{14})_(?P<seq>\\d+)\\.MP4$'
"""


def _clips(vol: Path, names: list[str], seed: int = 7) -> dict[bytes, str]:
    """Write evidence clips (random bytes) under DCIM; returns the manifest."""
    rng = random.Random(seed)
    (vol / "DCIM").mkdir(parents=True, exist_ok=True)
    manifest = {}
    for i, name in enumerate(names):
        path = vol / "DCIM" / name
        path.write_bytes(rng.randbytes(4096 + i))
        stamp = 1_790_000_000 + 60 * i
        os.utime(path, (stamp, stamp))
        manifest[os.fsencode(path.relative_to(vol))] = sha256_of(path)
    return manifest


def _copy_all(ctx: Context, ing: Ingestor, vol: Path) -> int:
    report = ing.register_volume(vol)
    while (row := ing.claim([report.device_id], retry_seconds=0)) is not None:
        ing.ingest(row)
    return report.device_id


def _assert_held(st: Station, ctx: Context, vol: Path, manifest: dict[bytes, str], raw: str):
    """The fixed outcome: quarantined under the stand-in, copies by device id, sources kept."""
    stand_in = identifiers.stand_in(raw)
    rows = ledger_rows(
        st,
        "SELECT r.*, d.serial, d.identity_refused AS dev_refused FROM recordings r"
        " JOIN devices d ON d.id = r.device_id",
    )
    assert len(rows) == len(manifest)
    for r in rows:
        assert r["serial"] == stand_in
        assert r["state"] == "quarantined", r
        assert "refused" in r["reason"] and "quarantine" in r["reason"]
        copy = st.data_dir / "spool" / r["spool_path"]  # relative to the spool root
        assert copy.parent.name == f"device-{r['device_id']}"
        assert sha256_of(copy) == r["sha256"] == manifest[bytes(r["source_path_raw"])]
    # Recovery (start-up, periodic) and a release pass change nothing of it.
    Ingestor(ctx).recover()
    assert Releaser(ctx, open_store(ctx)).release_ready() == 0
    for rel in manifest:
        assert os.path.isfile(os.path.join(os.fsencode(vol), rel)), "source erased"
    for r in rows:
        assert (st.data_dir / "spool" / r["spool_path"]).is_file(), "spool copy lost"
    # Nothing written outside the spool's own folders (`..` once wrote into data_dir).
    assert not list(st.data_dir.glob("*.mp4")) and not list((ctx.spool / ".tmp").glob("*.mp4"))
    rec = Recorder.of(vol, stand_in, manifest)
    assert check_invariants(st.config_path, [rec], final=True, release_after="spooled") == []
    return rows


@pytest.mark.parametrize("raw", [".tmp", ".."])
def test_dot_serial_from_the_usb_info_block(make_station, usb_sim: UsbSim, raw: str) -> None:  # type: ignore[no-untyped-def]
    st = make_station(SPOOLED)
    ctx = st.context()
    usb_sim.bus.plug(SimUsbRecorder(raw), port=1)
    env = DriverEnv(timezone=ctx.cfg.station.timezone, secret={"zfy_admin_password": PASSWORD}.get)
    driver = ZfyUsbDriver(ZfyUsbSettings(timeout_ms=500), env, usb_backend=usb_sim.backend)
    linker = Linker()
    runner = DriverRunner(ctx, driver, linker)
    try:
        runner.step()
        wait_for(lambda: usb_sim.bus is not None and driver.discover() == [], timeout=5,
                 what="recorder switched to mass storage")  # fmt: skip
        runner.step()
        # The volume's device info file repeats the recorder's serial, as real ones do.
        vol = st.mount_root / "REC0001"
        manifest = _clips(vol, [f"CLIP{i:04d}.MP4" for i in range(10)])
        (vol / "DEVINFO.TXT").write_text(f"vendor=ZFY\nserial={raw}\n", encoding="utf-8")
        ing = Ingestor(ctx, linker=linker)
        _copy_all(ctx, ing, vol)
        rows = _assert_held(st, ctx, vol, manifest, raw)
        dev = ledger_rows(st, "SELECT * FROM devices WHERE id=?", (rows[0]["device_id"],))[0]
        assert dev["serial_source"] == "usb" and "from usb refused" in dev["identity_refused"]
        errors = ledger_rows(st, "SELECT payload FROM outbox WHERE type='recorder.error'")
        assert any("refused" in e["payload"] for e in errors)
    finally:
        driver.close()
        ctx.close()


@pytest.mark.parametrize("raw", [".tmp", ".."])
def test_dot_serial_from_a_file_name(make_station, raw: str) -> None:  # type: ignore[no-untyped-def]
    st = make_station(SPOOLED + LOOSE_PATTERN)
    ctx = st.context()
    vol = st.mount_root / "REC0002"
    names = [f"{raw}_100001_202609210{i}0000_{i:04d}.MP4" for i in range(1, 6)]
    manifest = _clips(vol, names)
    try:
        _copy_all(ctx, Ingestor(ctx), vol)
        rows = _assert_held(st, ctx, vol, manifest, raw)
        assert all(r["start_source"] == "name:loose" for r in rows)
    finally:
        ctx.close()


def test_dot_officer_from_a_file_name_quarantines_that_recording(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station(SPOOLED + LOOSE_PATTERN)
    ctx = st.context()
    vol = st.mount_root / "REC0003"
    _clips(vol, ["ZFY3_.._20260921080000_0001.MP4", "ZFY3_100001_20260921090000_0002.MP4"])
    try:
        _copy_all(ctx, Ingestor(ctx), vol)
        rows = {r["officer_id"]: r for r in ledger_rows(st, "SELECT * FROM recordings")}
        assert rows["100001"]["state"] == "spooled"
        assert rows[None]["state"] == "quarantined"
        assert "officer_id '..' from file name" in rows[None]["identity_refused"]
    finally:
        ctx.close()


def test_dot_volume_label_with_the_daemon_releasing_only_durable_copies(  # type: ignore[no-untyped-def]
    make_station, daemon
) -> None:
    st = make_station(SPOOLED)
    vol = st.mount_root / ".tmp"  # mounted under its label, no device info, no name pattern
    manifest = _clips(vol, [f"CLIP{i:04d}.MP4" for i in range(10)])
    proc = daemon(st)
    wait_for(
        lambda: len(ledger_rows(st, "SELECT 1 FROM recordings WHERE state='quarantined'")) == 10,
        timeout=60,
        what="all ten clips copied and held",
    )
    ctx = st.context()
    try:
        rows = _assert_held(st, ctx, vol, manifest, ".tmp")
        # An operator accepts them: now they are released, each only after its durable copy.
        ids = [r["id"] for r in rows]
        st.cli("accept", *ids, "--operator", "op1", "--reason", "label checked", check=True)
        wait_for(
            lambda: len(ledger_rows(st, "SELECT 1 FROM recordings WHERE state='released'")) == 10,
            timeout=20,
            what="accepted clips released through the wipe gate",
        )
    finally:
        ctx.close()
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert not any((vol / "DCIM").iterdir())
    for r in ledger_rows(st, "SELECT * FROM recordings"):
        # Released only with a durable, verified copy that still matches the recorder's file.
        assert r["state"] == "released" and r["verified_at"] and r["released_at"]
        copy = st.data_dir / "spool" / r["spool_path"]
        assert sha256_of(copy) == r["sha256"] == manifest[bytes(r["source_path_raw"])]
        types = [
            e["type"]
            for e in ledger_rows(
                st, "SELECT type FROM custody WHERE recording_id=? ORDER BY seq", (r["id"],)
            )
        ]
        held = types.index("recording.quarantined")
        assert held < types.index("recording.accepted") < types.index("recording.released")
    assert st.cli("verify").returncode == 0
