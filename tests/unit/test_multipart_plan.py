"""Part planning: one read gives the object's SHA-256 and each part's, composite as S3 has it."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from agent.archive.s3.partplan import MIB, choose_part_size, composite, plan
from agent.core.errors import SpoolIntegrityError, SpoolReadError


def test_plan_digests(tmp_path: Path) -> None:
    data = os.urandom(5 * MIB * 2 + 777)
    f = tmp_path / "clip"
    f.write_bytes(data)
    sha, parts = plan(f, len(data), 5 * MIB)
    assert sha == hashlib.sha256(data).hexdigest()
    assert [(p.number, p.offset, p.size) for p in parts] == [
        (1, 0, 5 * MIB),
        (2, 5 * MIB, 5 * MIB),
        (3, 10 * MIB, 777),
    ]
    for p in parts:
        chunk = data[p.offset : p.offset + p.size]
        assert p.checksum == base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    joined = b"".join(hashlib.sha256(data[p.offset : p.offset + p.size]).digest() for p in parts)
    assert composite(parts) == base64.b64encode(hashlib.sha256(joined).digest()).decode() + "-3"


def test_empty_file_is_one_part(tmp_path: Path) -> None:
    f = tmp_path / "empty"
    f.write_bytes(b"")
    sha, parts = plan(f, 0, 5 * MIB)
    assert sha == hashlib.sha256(b"").hexdigest() and len(parts) == 1 and parts[0].size == 0


def test_changed_or_missing_spool_copy(tmp_path: Path) -> None:
    f = tmp_path / "clip"
    f.write_bytes(b"abc")
    with pytest.raises(SpoolIntegrityError, match="no longer 4 bytes"):
        plan(f, 4, 5 * MIB)
    with pytest.raises(SpoolIntegrityError):
        plan(f, 2, 5 * MIB)
    with pytest.raises(SpoolReadError, match="cannot read spool copy"):
        plan(tmp_path / "gone", 3, 5 * MIB)


def test_part_size_never_needs_more_than_10000_parts() -> None:
    assert choose_part_size(100 * MIB, 8 * MIB) == 8 * MIB
    big = 200 * 1024 * MIB  # 200 GiB
    size = choose_part_size(big, 8 * MIB)
    assert size % MIB == 0 and -(-big // size) <= 10_000
