"""The station SM2 key (agent/station/sm2key.py) and SM2 signatures (agent/core/sm2sig.py):
made once with mode 0600 and read back the same, a damaged file is refused naming it, and
signatures verify with the OpenSSL command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.core import sm2sig
from agent.core.errors import StationKeyError
from agent.station import sm2key
from toolcheck import require_tool


def test_key_made_once_private_and_stable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    sk, pk = sm2key.load_or_create(keys)
    path = keys / sm2key.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert sm2key.load_or_create(keys) == (sk, pk)
    path.write_text("sm2 not-hex\n")
    with pytest.raises(StationKeyError, match=str(path)):
        sm2key.load_or_create(keys)


def test_signature_verifies_with_openssl(tmp_path: Path) -> None:
    sk, pk = sm2key.load_or_create(tmp_path)
    msg = "调阅 manifest body".encode()
    der = sm2sig.sign(sk, pk, msg)
    assert sm2sig.verify(pk, msg, der) and not sm2sig.verify(pk, msg + b"x", der)
    (tmp_path / "pub.pem").write_text(sm2sig.public_pem(pk))
    (tmp_path / "msg").write_bytes(msg)
    (tmp_path / "sig").write_bytes(der)
    base = [require_tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey",
            str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3", "-pkeyopt",
            "distid:1234567812345678", "-sigfile", str(tmp_path / "sig"), "-in"]  # fmt: skip
    ok = subprocess.run([*base, str(tmp_path / "msg")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified Successfully" in ok.stdout
    (tmp_path / "msg").write_bytes(msg + b"x")
    bad = subprocess.run([*base, str(tmp_path / "msg")], capture_output=True, text=True)
    assert bad.returncode != 0
