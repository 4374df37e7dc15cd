"""Console keys and the signed envelope, without a broker: key ids, signatures, the register's
`console_keys` column, and the envelope schema in docs/schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from agent.access import consolekey
from agent.access.register import RegisterError, load_register
from agent.cli.console import envelope

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
HEADER = "officer_id,login,name,roles,cert_no,active,console_keys\n"


def test_key_pair_written_private_and_verifiable(tmp_path: Path) -> None:
    path, kid = consolekey.create(tmp_path / "k")
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "k" / "console.pub").read_text().strip() == kid
    assert consolekey.KEY_ID.match(kid)
    key = consolekey.load_private(path)
    sig = consolekey.sign(key, "签名 body".encode())
    assert consolekey.verify(kid, sig, "签名 body".encode())
    assert not consolekey.verify(kid, sig, "签名 body ".encode())
    assert not consolekey.verify(kid, "not base64!", b"x")
    url_safe = sig.replace("+", "-").replace("/", "_").rstrip("=")  # what JS tools often emit
    assert consolekey.verify(kid, url_safe, "签名 body".encode())
    with pytest.raises(consolekey.ConsoleKeyError, match="already exists"):
        consolekey.create(tmp_path / "k")


def test_envelope_matches_the_documented_schema(tmp_path: Path) -> None:
    path, kid = consolekey.create(tmp_path)
    text = envelope(consolekey.load_private(path), "dock-01", "priority", {"priority": 5}, "r-1")
    doc = json.loads(text)
    schema = json.loads((SCHEMAS / "command-envelope.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(doc)
    body_schema = {**schema["$defs"]["body"], "$schema": schema["$schema"]}
    cls(body_schema, format_checker=cls.FORMAT_CHECKER).validate(json.loads(doc["body"]))
    assert doc["key"] == kid and consolekey.verify(kid, doc["sig"], doc["body"].encode("utf-8"))


def test_register_refuses_malformed_and_shared_keys(tmp_path: Path) -> None:
    _, kid = consolekey.create(tmp_path / "a")
    reg = tmp_path / "operators.csv"
    reg.write_text(HEADER + f"B001,b001,王五,custodian,JZ1,1,{kid}\n", encoding="utf-8")
    [op], _ = load_register(reg)
    assert op.console_keys == (kid,)
    reg.write_text(HEADER + "B001,b001,王五,custodian,JZ1,1,sha256:abc\n", encoding="utf-8")
    with pytest.raises(RegisterError, match="line 2, column 'console_keys'.*not a console key"):
        load_register(reg)
    two = f"B001,b001,王五,custodian,JZ1,1,{kid}\nB002,b002,赵六,custodian,JZ2,1,{kid}\n"
    reg.write_text(HEADER + two, encoding="utf-8")
    with pytest.raises(RegisterError, match="line 3, column 'console_keys'.*already on line 2"):
        load_register(reg)
