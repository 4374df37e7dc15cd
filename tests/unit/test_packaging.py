"""License and dependency floors as pyproject.toml declares them (issue 15, item 6)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_spdx_license_with_a_setuptools_that_understands_it() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["license"] == "Apache-2.0"
    assert "LICENSE" in meta["project"]["license-files"]
    assert "setuptools>=77" in meta["build-system"]["requires"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_floors_the_lowest_versions_stage_tests() -> None:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {d.split(">=")[0]: d for d in deps["dependencies"]}
    assert runtime["boto3"].startswith("boto3>=1.36,")
    assert runtime["holidays"].startswith("holidays>=0.85,")
    assert (REPO / ".ci" / "lowest").is_file()
    assert "bash .ci/lowest" in (REPO / ".ci" / "test").read_text(encoding="utf-8")
