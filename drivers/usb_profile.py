"""Vendor profiles of the ZFY-style USB protocol: data files, so a real vendor's codes drop in.

A profile (`drivers/profiles/<name>.toml`, or any TOML file named by path) says which USB
devices it matches (VID/PID) and, per command, the vendor control transfer that carries it:
request code, wValue, wIndex, payload template and reply layout. Only `storage_mode` is
required; a profile without `info` identifies the recorder by its USB serial string, one
without `battery` or `clock_*` reports those as unknown. The format is documented in
docs/drivers.md ("USB vendor profiles").
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
INFO_FIELDS = ("serial", "officer_id", "officer_name", "unit_id", "unit_name", "model", "firmware")


class ProfileError(ValueError):
    """A profile is missing or invalid; the message names the file and the key."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_M):
    vid: int = Field(ge=0, le=0xFFFF, description="USB vendor id.")
    pid: int = Field(ge=0, le=0xFFFF, description="USB product id.")
    serial: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.*?-]{1,64}$",
        description="USB serial-number pattern (glob: * ?) when the vendor's serials have a "
        "known form; the udev mount rule then also requires ID_SERIAL_SHORT to match.",
    )


class Transfer(_M):
    out_type: int = Field(0x40, description="bmRequestType of host-to-device requests.")
    in_type: int = Field(0xC0, description="bmRequestType of device-to-host requests.")
    timeout_ms: int = Field(2000, gt=0, le=60000, description="Per-transfer timeout.")


class Reply(_M):
    request: int = Field(ge=0, le=255)
    value: int = Field(0, ge=0, le=0xFFFF)
    index: int = Field(0, ge=0, le=0xFFFF)
    length: int = Field(gt=0, le=4096, description="Bytes read back.")
    ok_index: int | None = Field(None, ge=0, description="Byte that says success, if any.")
    ok_value: int | None = Field(None, ge=0, le=255, description="Its value on success.")


class InCommand(_M):
    request: int = Field(ge=0, le=255)
    value: int = Field(0, ge=0, le=0xFFFF)
    index: int = Field(0, ge=0, le=0xFFFF)
    length: int = Field(gt=0, le=4096, description="Bytes the reply must have.")


class OutCommand(_M):
    request: int = Field(ge=0, le=255)
    value: int = Field(0, ge=0, le=0xFFFF)
    index: int = Field(0, ge=0, le=0xFFFF)
    payload: str = Field(
        "", description="Hex template; {password} and {time} expand to the hex of their bytes."
    )
    pad_to: int = Field(0, ge=0, le=4096, description="Zero-pad the payload to this length.")
    needs_login: bool = Field(False, description="Log in (once per attach) before this.")
    reply: Reply | None = None

    @field_validator("payload")
    @classmethod
    def _hex(cls, v: str) -> str:
        bare = re.sub(r"\{(password|time)\}", "", v)
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", bare):
            raise ValueError("payload must be hex digit pairs plus {password} / {time}")
        return v

    def build(self, password: str | None = None, time_text: str | None = None) -> bytes:
        text = self.payload
        if "{password}" in text:
            text = text.replace("{password}", (password or "").encode("utf-8").hex())
        if "{time}" in text:
            text = text.replace("{time}", (time_text or "").encode("ascii").hex())
        data = bytes.fromhex(text)
        if self.pad_to and len(data) > self.pad_to:
            raise ValueError(f"payload of {len(data)} bytes exceeds pad_to {self.pad_to}")
        return data.ljust(self.pad_to, b"\0")


class InfoCommand(InCommand):
    encoding: str = Field("gbk", description="Encoding of the text fields (NUL-padded).")
    fields: list[tuple[str, int]] = Field(
        description="[name, size] in order; names from " + ", ".join(INFO_FIELDS)
    )

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: list[tuple[str, int]]) -> list[tuple[str, int]]:
        names = [n for n, _ in v]
        unknown = [n for n in names if n not in INFO_FIELDS]
        if unknown:
            raise ValueError(f"unknown info fields {unknown}; use {list(INFO_FIELDS)}")
        if "serial" not in names:
            raise ValueError("info needs a 'serial' field")
        if any(size <= 0 for _, size in v):
            raise ValueError("field sizes must be > 0")
        return v


class BatteryCommand(InCommand):
    percent_index: int = Field(0, ge=0)
    charging_index: int | None = Field(None, ge=0)
    charging_mask: int = Field(1, ge=1, le=255)


class ClockGetCommand(InCommand):
    format: str = Field("%Y%m%d%H%M%S", description="strftime of the recorder's local time.")


class ClockSetCommand(OutCommand):
    format: str = Field("%Y%m%d%H%M%S", description="strftime of the recorder's local time.")

    def build_for(self, when: datetime) -> bytes:
        return self.build(time_text=when.strftime(self.format))


class LoginCommand(OutCommand):
    reply: Reply  # type: ignore[assignment]  # login always reads its verdict back

    @field_validator("reply")
    @classmethod
    def _verdict(cls, v: Reply) -> Reply:
        if v.ok_index is None or v.ok_value is None:
            raise ValueError("login.reply needs ok_index and ok_value")
        return v


class UsbProfile(_M):
    name: str
    vendor: str = Field(description="Vendor name recorded for recorders of this profile.")
    description: str = ""
    match: list[Match] = Field(min_length=1)
    transfer: Transfer = Field(default_factory=Transfer)  # type: ignore[arg-type]
    info: InfoCommand | None = None
    battery: BatteryCommand | None = None
    clock_get: ClockGetCommand | None = None
    clock_set: ClockSetCommand | None = None
    login: LoginCommand | None = None
    storage_mode: OutCommand


def profile_path(name_or_path: str) -> Path:
    if _NAME_RE.match(name_or_path):
        res = importlib.resources.files("drivers") / "profiles" / f"{name_or_path}.toml"
        return Path(str(res))
    return Path(name_or_path)


def builtin_profiles() -> list[str]:
    folder = importlib.resources.files("drivers") / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str) -> UsbProfile:
    path = profile_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(
            f"USB profile {name_or_path!r} not found ({path}); built-in profiles: "
            f"{', '.join(builtin_profiles())}, or give the path of a profile TOML"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"USB profile {path}: {exc}") from None
    try:
        return UsbProfile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ProfileError(f"USB profile {path}: {problems}") from None
