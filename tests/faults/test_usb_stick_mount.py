"""A clerk's USB stick is not a recorder (issue 15, item 4).

Before: the udev rule mounted any USB FAT/exFAT volume under the mount root, so the stick was
ingested as a recorder (and with --rw and an off-station archive could be erased after
archiving). Now the rendered rule matches the recorders' USB ids only; the evaluator runs it
against recorded `udevadm info --export` property sets committed as fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli.install_systemd import default_values, rendered_files
from agent.cli.udev_rules import Outcome, UsbId, evaluate, parse_export, profile_ids
from fixtures.station import Station

UDEV = Path(__file__).resolve().parents[1] / "fixtures" / "udev"
RULES = "etc/udev/rules.d/99-evidence-recorder.rules"
ROOT = "/srv/evidence-media"


def _rule(**kw: object) -> str:
    values = default_values(
        "/etc/evidence-agent/agent.toml", "/srv/evidence-data", ROOT, "evidence", False,
        bindir="/usr/bin", **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return rendered_files(values)[RULES]


def _device(name: str, **changes: str) -> dict[str, str]:
    props = parse_export((UDEV / f"{name}.export").read_text(encoding="utf-8"))
    props.update(changes)
    return props


def test_fixtures_are_udevadm_export_property_sets() -> None:
    rec, stick = _device("zfy-recorder"), _device("usb-stick")
    assert (rec["ID_VENDOR_ID"], rec["ID_MODEL_ID"], rec["ID_FS_TYPE"]) == ("5a46", "5901", "vfat")
    assert (stick["ID_VENDOR_ID"], stick["ID_BUS"], stick["SUBSYSTEM"]) == ("0781", "usb", "block")


def test_the_recorder_is_mounted_and_the_usb_stick_is_not() -> None:
    rule = _rule()
    rec = evaluate(rule, _device("zfy-recorder"))
    assert rec.mounts == [f"{ROOT}/ZFY0042"]
    assert "--options=ro,nosuid,nodev,noexec" in " ".join(rec.run[0])
    assert rec.env["EVIDENCE_RECORDER"] == "zfy"
    stick = evaluate(rule, _device("usb-stick"))
    assert stick.mounts == []
    assert "UDISKS_IGNORE" not in stick.env  # left to the desktop, untouched
    # Removal and non-USB buses stay untouched as before.
    assert evaluate(rule, _device("zfy-recorder"), action="remove").mounts == []
    assert evaluate(rule, _device("zfy-recorder", ID_BUS="ata")).mounts == []


def test_the_ambarella_profile_is_matched_too() -> None:
    ids = profile_ids("ambarella")
    dev = _device("zfy-recorder", ID_VENDOR_ID=f"{ids[0].vid:04x}", ID_MODEL_ID=f"{ids[0].pid:04x}")
    out = evaluate(_rule(), dev)
    assert out.mounts == [f"{ROOT}/ZFY0042"] and out.env["EVIDENCE_RECORDER"] == "ambarella"


def test_accept_unknown_usb_mounts_the_stick_under_an_unknown_name() -> None:
    rule = _rule(accept_unknown_usb=True)
    assert evaluate(rule, _device("usb-stick")).mounts == [f"{ROOT}/unknown-usb-KEJI_U"]
    assert evaluate(rule, _device("zfy-recorder")).mounts == [f"{ROOT}/ZFY0042"]


def test_a_serial_pattern_restricts_a_profile_to_its_serials() -> None:
    rule = _rule(recorders=[UsbId(0x5A46, 0x5901, "ZFY*", "zfy")])
    assert evaluate(rule, _device("zfy-recorder")).mounts == [f"{ROOT}/ZFY0042"]
    other = _device("zfy-recorder", ID_SERIAL_SHORT="XX0001")
    assert evaluate(rule, other).mounts == []


def test_install_systemd_renders_the_configured_profiles(tmp_path: Path) -> None:
    from agent.cli import main as cli

    profile = tmp_path / "vendor.toml"
    text = (Path(__file__).resolve().parents[2] / "drivers/profiles/zfy.toml").read_text("utf-8")
    profile.write_text(text.replace('name = "zfy"', 'name = "acme"'), encoding="utf-8")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        '[station]\ndata_dir = "/srv/ev"\n[detect]\nmount_roots = ["/srv/media"]\n'
        '[[drivers]]\ntype = "zfy_usb"\nprofile = "vendor.toml"\n'
        'match = [{ vid = 0x1234, pid = 0xabcd, serial = "AC?????" }]\n',
        encoding="utf-8",
    )
    dest = tmp_path / "root"
    assert cli.main(["install-systemd", "--config", str(cfg), "--dest", str(dest)]) == 0
    rule = (dest / RULES).read_text(encoding="utf-8")
    acme = _device(
        "zfy-recorder", ID_VENDOR_ID="1234", ID_MODEL_ID="abcd", ID_SERIAL_SHORT="AC00001"
    )
    out: Outcome = evaluate(rule, acme)
    assert out.mounts == ["/srv/media/ZFY0042"] and out.env["EVIDENCE_RECORDER"] == "acme"
    assert evaluate(rule, _device("zfy-recorder")).mounts == ["/srv/media/ZFY0042"]  # shipped
    assert evaluate(rule, _device("usb-stick")).mounts == []


def test_volumes_of_unknown_usb_storage_are_quarantined(
    make_station: Callable[..., Station],
    bodycam: Callable[..., tuple[Path, list[Path]]],
) -> None:
    st = make_station()  # no inventory: every recorder would be accepted
    vol, clips = bodycam(out=st.mount_root / "unknown-usb-KEJI_U", serial="STICK1", clips=2)
    ingest = st.cli("ingest", str(vol), "--json")
    assert ingest.returncode == 0, ingest.stderr
    doc = json.loads(st.cli("status", "--json", check=True).stdout)
    states = sorted(r["state"] for r in doc["recordings"])
    assert states == ["quarantined"] * len(clips)
    # A recorder volume next to it is not held.
    rec, _ = bodycam(out=st.mount_root / "ZFY0042", serial="ZFY0042", clips=1)
    st.cli("ingest", str(rec), check=True)
    doc = json.loads(st.cli("status", "--json", check=True).stdout)
    by_serial = {r["serial"]: r["state"] for r in doc["recordings"]}
    assert by_serial["ZFY0042"] == "spooled"


@pytest.mark.parametrize("name", ["zfy-recorder", "usb-stick"])
def test_the_evaluator_reads_every_rule_line(name: str) -> None:
    # A rule the evaluator cannot parse must fail loudly, not be skipped.
    with pytest.raises(ValueError, match="cannot parse"):
        evaluate('ENV{ID_BUS}=="usb", BOGUS', _device(name))
