"""The udev mount rule: which USB devices are recorders, and a small evaluator of udev rules.

Only recorders are mounted. The rule matches the USB vendor/product ids (and, where a profile
knows the form of its serials, `ID_SERIAL_SHORT`) of the shipped driver profiles plus the
profiles and `match` lists of the configured `[[drivers]]`; any other USB storage is left
alone, unless `detect.accept_unknown_usb = true`: then it is mounted under an
`unknown-usb-` name and everything on it is quarantined (agent.recorders.unknown_usb).

`evaluate()` runs a rule file against a device's properties as `udevadm info --export
--query=property` prints them, so tests (and `install-systemd --dry-run` readers) can see
which devices a rendered rule mounts. It knows the subset of udev(7) the rule uses: match keys
`==`/`!=` on SUBSYSTEM, ACTION, KERNEL and ENV{..} (globs with `*`, `?`, `[...]`, `|`),
assignments `=`/`+=` to ENV{..} and RUN{program}, GOTO and LABEL, `$env{..}`, `$devnode`, `%k`.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.recorders.unknown_usb import PREFIX as UNKNOWN_PREFIX
from drivers.usb_profile import Match, builtin_profiles, load_profile

_KEY = re.compile(r'\s*([A-Z_]+)(?:\{([A-Za-z0-9_]+)\})?\s*(==|!=|\+=|=)\s*"((?:[^"\\]|\\.)*)"\s*')


@dataclass(frozen=True)
class UsbId:
    """One recorder identity the mount rule accepts."""

    vid: int
    pid: int
    serial: str | None
    profile: str


def profile_ids(profile: str, matches: Iterable[Match] | None = None) -> list[UsbId]:
    """The ids of a profile (or the `match` list that replaces them in a driver config)."""
    prof = load_profile(profile)
    chosen = list(matches) if matches else list(prof.match)
    return [UsbId(m.vid, m.pid, m.serial, prof.name) for m in chosen]


def configured_ids(config_data: dict[str, Any], config_dir: Path) -> list[UsbId]:
    """Ids of the `zfy_usb` drivers in a config file's TOML (profile paths relative to it)."""
    out: list[UsbId] = []
    drivers = config_data.get("drivers")
    for d in drivers if isinstance(drivers, list) else []:
        if not isinstance(d, dict) or d.get("type") != "zfy_usb":
            continue
        profile = str(d.get("profile", "zfy"))
        if profile.endswith(".toml") and not Path(profile).is_absolute():
            profile = str(config_dir / profile)
        raw = d.get("match")
        matches = [Match.model_validate(m) for m in raw] if isinstance(raw, list) else None
        out += profile_ids(profile, matches)
    return out


def recorder_ids(config_data: dict[str, Any], config_dir: Path) -> list[UsbId]:
    """Shipped profiles first, then the configured ones; duplicates dropped."""
    ids = [i for name in builtin_profiles() for i in profile_ids(name)]
    ids += configured_ids(config_data, config_dir)
    return list(dict.fromkeys(ids))


def match_lines(ids: Iterable[UsbId]) -> str:
    """One udev line per id, marking the device as a recorder of that profile."""
    lines = []
    for i in ids:
        serial = f', ENV{{ID_SERIAL_SHORT}}=="{i.serial}"' if i.serial else ""
        lines.append(f"# profile {i.profile}: USB {i.vid:04x}:{i.pid:04x}")
        lines.append(
            f'ENV{{ID_VENDOR_ID}}=="{i.vid:04x}", ENV{{ID_MODEL_ID}}=="{i.pid:04x}"{serial}, '
            f'ENV{{EVIDENCE_RECORDER}}="{i.profile}"'
        )
    return "\n".join(lines)


def unknown_line(accept_unknown_usb: bool) -> str:
    """What happens to USB storage that matched no recorder id."""
    if accept_unknown_usb:
        return "# detect.accept_unknown_usb = true\n" + (
            f'ENV{{EVIDENCE_RECORDER}}!="?*", ENV{{EVIDENCE_RECORDER}}="unknown", '
            f'ENV{{EVIDENCE_PREFIX}}="{UNKNOWN_PREFIX}"'
        )
    return (
        "# detect.accept_unknown_usb = false\n"
        'ENV{EVIDENCE_RECORDER}!="?*", GOTO="evidence_recorder_end"'
    )


# --- evaluator --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Properties after the rules ran, and the RUN{program} commands they queued."""

    env: dict[str, str]
    run: list[list[str]] = field(default_factory=list)

    @property
    def mounts(self) -> list[str]:
        """Mount points of the queued `systemd-mount` commands (last argument)."""
        return [cmd[-1] for cmd in self.run if cmd and cmd[0].endswith("systemd-mount")]


def parse_export(text: str) -> dict[str, str]:
    """`udevadm info --export --query=property` output (KEY='value' lines) as a dict."""
    props = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key:
            props[key] = shlex.split(value)[0] if value else ""
    return props


def _glob(value: str, pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(value, alt) for alt in pattern.split("|"))


def _substitute(text: str, env: dict[str, str]) -> str:
    text = re.sub(r"\$env\{([A-Za-z0-9_]+)\}", lambda m: env.get(m.group(1), ""), text)
    return text.replace("$devnode", env.get("DEVNAME", "")).replace("%k", env.get("KERNEL", ""))


def _parse(line: str) -> list[tuple[str, str | None, str, str]]:
    pos, out = 0, []
    while pos < len(line):
        m = _KEY.match(line, pos)
        if not m:
            raise ValueError(f"cannot parse udev rule at {line[pos:]!r}")
        out.append((m.group(1), m.group(2), m.group(3), m.group(4)))
        pos = m.end()
        if pos < len(line):
            if line[pos] != ",":
                raise ValueError(f"expected ',' in udev rule at {line[pos:]!r}")
            pos += 1
    return out


def _value(key: str, attr: str | None, env: dict[str, str]) -> str:
    return env.get(attr or "", "") if key == "ENV" else env.get(key, "")


def _matches(terms: list[tuple[str, str | None, str, str]], env: dict[str, str]) -> bool:
    for key, attr, op, pattern in terms:
        if op in ("==", "!=") and _glob(_value(key, attr, env), pattern) != (op == "=="):
            return False
    return True


def _apply(terms: list[tuple[str, str | None, str, str]], out: Outcome) -> str | None:
    goto = None
    for key, attr, op, value in terms:
        if op in ("==", "!="):
            continue
        if key == "ENV" and attr:
            out.env[attr] = _substitute(value, out.env)
        elif key == "RUN":
            command = shlex.split(_substitute(value, out.env))
            out.run = [*out.run, command] if op == "+=" else [command]
        elif key == "GOTO":
            goto = value
    return goto


def evaluate(rules_text: str, properties: dict[str, str], action: str = "add") -> Outcome:
    """Run `rules_text` against a device's properties for `action`."""
    rules = []
    for raw in rules_text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append(_parse(line))
    labels = {t[0][3]: n for n, t in enumerate(rules) if t[0][0] == "LABEL"}
    kernel = Path(properties.get("DEVNAME", "")).name
    out = Outcome({"KERNEL": kernel, **properties, "ACTION": action})
    n = 0
    while n < len(rules):
        terms = rules[n]
        n += 1
        if terms[0][0] == "LABEL" or not _matches(terms, out.env):
            continue
        goto = _apply(terms, out)
        if goto is not None:
            n = labels[goto]
    return out
