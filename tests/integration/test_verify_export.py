"""`verify-export DIR --pubkey FILE` checks an export with no station and no ledger at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[2]


def _verify_export(folder: Path, pub: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_AGENT")}
    env["HOME"] = str(home)  # no config, no data dir: a reviewer's machine
    cmd = [sys.executable, "-m", "agent", "verify-export", str(folder), "--pubkey", str(pub)]
    return subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=ROOT)


def test_export_verifies_offline_and_any_change_fails(station, bodycam, tmp_path):
    vol, _ = bodycam(serial="ZFY1290", clips=2, seconds=1.0)
    station.cli("ingest", str(vol), check=True)
    ids = json.loads(station.cli("status", "--json", check=True).stdout)["recordings"]
    out = tmp_path / "export"
    station.cli(
        "export", *[r["id"] for r in ids], "--to", str(out), "--reason", "复议",
        "--operator", "OP1", check=True,
    )  # fmt: skip
    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    pub = reviewer / "station.pub"
    shutil.copy(station.data_dir / "keys" / "station.ed25519.pub", pub)
    shutil.rmtree(station.data_dir)  # no ledger anywhere

    good = _verify_export(out, pub, reviewer)
    doc = json.loads(good.stdout)
    assert good.returncode == 0 and doc["files_checked"] == 2, good.stdout
    assert list(reviewer.iterdir()) == [pub]  # nothing created on the reviewer's machine

    def fresh() -> Path:
        copy = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(out, copy)
        for p in copy.iterdir():
            p.chmod(0o600)
        return copy

    old_style = fresh()
    next(old_style.glob("SHA256SUMS*")).unlink()  # manifests of the current release
    assert _verify_export(old_style, pub, reviewer).returncode == 0

    flipped = fresh()
    clip = next(p for p in flipped.iterdir() if p.suffix == ".mp4")
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip.write_bytes(bytes(data))
    bad = _verify_export(flipped, pub, reviewer)
    assert bad.returncode == 1 and clip.name in bad.stdout, bad.stdout

    edited = fresh()
    manifest = next(edited.glob("manifest-*.json"))
    body = json.loads(manifest.read_text(encoding="utf-8"))
    body["reason"] = "something else"
    manifest.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    bad = _verify_export(edited, pub, reviewer)
    assert bad.returncode == 1 and "signature does not verify" in bad.stdout, bad.stdout

    other = reviewer / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    bad = _verify_export(fresh(), other, reviewer)
    assert bad.returncode == 1 and "not this key" in bad.stdout, bad.stdout
