"""Object key layout: a case kept together, keys safe for any original file name."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from agent.archive import keys as k

SAFE = re.compile(r"^[A-Za-z0-9_./-]+$")


def test_recording_key_layout_uses_local_date() -> None:
    key = k.recording_key(
        "evidence",
        recording_id="01a2007d-e526-72e2-aa87-b3df1b0ad99e",
        unit="UNIT01",
        serial="ZFY0001",
        start=datetime(2026, 9, 30, 17, 30, tzinfo=UTC),  # 01:30 on Oct 1 in Shanghai
        source_path="DCIM/100/ZFY0001_100001_20261001013000_0001.MP4",
        timezone="Asia/Shanghai",
    )
    assert key == "evidence/UNIT01/2026/10/01/ZFY0001/01a2007d-e526-72e2-aa87-b3df1b0ad99e.mp4"


def test_keys_are_safe_for_any_input() -> None:
    nasty = ["../../etc/passwd", "执法\n记录 .MP4", "a b/c\x00d.\udcff", "", "....", "x" * 500]
    for text in nasty:
        key = k.recording_key(
            "",
            recording_id="01a2007d-e526-72e2-aa87-b3df1b0ad99e",
            unit=text,
            serial=text,
            start=None,
            source_path=text,
            timezone="Asia/Shanghai",
        )
        assert SAFE.match(key) and ".." not in key.split("/"), key
        assert key.count("/") == 5 and len(key) < 200
    assert k.extension("clip.M P4") == ".mp4" and k.extension("noext") == ".bin"


def test_case_segment_is_stable_ascii_and_distinct() -> None:
    a, b = k.case_segment("环罚〔2026〕12号"), k.case_segment("环罚〔2026〕13号")
    assert a != b and a == k.case_segment("环罚〔2026〕12号")
    assert SAFE.match(a) and SAFE.match(k.case_segment("A/B 2026-1"))
    key = k.case_index_key("p", "环罚〔2026〕12号", "rid")
    assert key.startswith("p/_cases/") and key.endswith("/rid.json")


def test_custody_keys() -> None:
    assert k.checkpoint_key("", "st-1", 42) == "_custody/st-1/checkpoints/000000000042.json"
    assert k.pubkey_key("p", "st 1", "sha256:abc") == "p/_custody/st_1/keys/sha256-abc.pem"
