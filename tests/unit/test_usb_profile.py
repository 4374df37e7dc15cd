"""Vendor profiles: the shipped files load, build the exact wire bytes, and bad files say why."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from drivers.text import decode_field
from drivers.usb_profile import ProfileError, builtin_profiles, load_profile


def test_builtin_profiles_load() -> None:
    assert {"zfy", "ambarella"} <= set(builtin_profiles())
    for name in builtin_profiles():
        assert load_profile(name).storage_mode is not None


def test_ambarella_login_packet_is_exactly_the_documented_one() -> None:
    p = load_profile("ambarella")
    assert (p.match[0].vid, p.match[0].pid) == (0x4255, 0x0001)
    assert (p.transfer.out_type, p.transfer.in_type) == (0x40, 0xC0)
    assert p.login is not None and (p.login.request, p.login.value) == (85, 0x0080)
    payload = p.login.build(password="123456")
    assert payload == bytes.fromhex("a1120012" + b"123456".hex()).ljust(64, b"\0")
    assert (p.login.reply.request, p.login.reply.ok_index, p.login.reply.ok_value) == (85, 2, 1)
    assert p.storage_mode.request == 80
    assert p.storage_mode.build()[:4] == bytes.fromhex("a1230023")


def test_zfy_info_layout_is_zfy_info() -> None:
    p = load_profile("zfy")
    assert p.info is not None
    assert p.info.fields == [
        ("serial", 7), ("officer_id", 6), ("officer_name", 32), ("unit_id", 12),
        ("unit_name", 32),
    ]  # fmt: skip
    assert p.info.length == sum(size for _, size in p.info.fields)
    assert p.clock_set is not None
    assert p.clock_set.build_for(datetime(2026, 5, 1, 8, 9, 10)) == b"20260501080910"


def test_invalid_profile_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "vendor.toml"
    bad.write_text(
        'name="v"\nvendor="V"\n[[match]]\nvid=1\npid=2\n[storage_mode]\nrequest=1\npayload="zz"\n'
    )
    with pytest.raises(ProfileError, match=r"vendor.toml: storage_mode.payload"):
        load_profile(str(bad))


def test_unknown_profile_lists_the_builtin_ones() -> None:
    with pytest.raises(ProfileError, match="ambarella"):
        load_profile("nosuchvendor")


@pytest.mark.parametrize(
    ("raw", "text", "problem"),
    [
        ("张三".encode("gbk") + b"\0" * 4, "张三", None),
        (b"ab\xff\xfe\0\0", "ab\\xff\\xfe", "not valid GBK"),
        (b"a\x07b\0\0", "a\\x07b", "non-printable"),
        (b"ab\0junk", "ab", "after the NUL"),
    ],
)
def test_gbk_fields_decode_with_escapes(raw: bytes, text: str, problem: str | None) -> None:
    shown, why = decode_field(raw, "gbk")
    assert shown == text
    assert (why is None) if problem is None else (problem in (why or ""))


def test_check_config_reports_a_bad_profile(make_station) -> None:  # type: ignore[no-untyped-def]
    st = make_station('[[drivers]]\ntype = "zfy_usb"\nprofile = "vendor-x.toml"\n')
    res = st.cli("check-config")
    assert res.returncode == 78
    assert "drivers.0.profile" in res.stderr and "vendor-x.toml" in res.stderr
