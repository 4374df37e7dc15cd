"""Environment variables of evidence-agent: blame override errors on the variable, warn about
misspelt ones.

Config overrides are `EVIDENCE_AGENT__SECTION__KEY` (two underscores). The project's own
variables use one underscore (`EVIDENCE_AGENT_CONFIG`, ...); any other single-underscore
`EVIDENCE_AGENT_*` name is almost certainly a misspelt override that would otherwise be
ignored without a word. Variable values are never printed: an admin may put anything there.
"""

from __future__ import annotations

from collections.abc import Mapping

OVERRIDE_PREFIX = "EVIDENCE_AGENT__"
OWN_PREFIX = "EVIDENCE_AGENT_"
# Variables the project reads itself (see README "Configure" and docs/troubleshooting.md).
OWN_VARIABLES = frozenset(
    {
        "EVIDENCE_AGENT_CONFIG",
        "EVIDENCE_AGENT_LOG_LEVEL",
        "EVIDENCE_AGENT_SYSCONFDIR",
        "EVIDENCE_AGENT_CRASHPOINT",
    }
)


def override_paths(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """Config key path (lower case) -> the override variable that sets it."""
    out: dict[tuple[str, ...], str] = {}
    for name in environ:
        if name.startswith(OVERRIDE_PREFIX):
            path = tuple(p.lower() for p in name[len(OVERRIDE_PREFIX) :].split("__") if p)
            if path:
                out[path] = name
    return out


def _blamed(key: str, msg: str, paths: dict[tuple[str, ...], str]) -> str | None:
    parts = tuple(key.split("."))
    for path, name in paths.items():
        if parts[: len(path)] == path:
            return name  # the variable's key itself, or a list item / table inside it
        if path[: len(parts)] == parts and msg.startswith("unknown key"):
            return name  # a misspelt section or key in the variable's name
    return None


def blame(
    problems: list[tuple[str, str]], environ: Mapping[str, str], file: str | None
) -> tuple[list[tuple[str, str]], str | None]:
    """Name the override variable in each problem it caused; return (problems, source).

    The source is the file when any problem is the file's, else "the environment", so an
    error in `EVIDENCE_AGENT__STATION__ID` is never blamed on a TOML file that is fine.
    """
    paths = override_paths(environ)
    out, from_file = [], False
    for key, msg in problems:
        name = _blamed(key, msg, paths)
        if name is None:
            from_file = True
            out.append((key, msg))
        else:
            out.append((key, f"{msg} (set by environment variable {name}; fix or unset it)"))
    if from_file and file:
        return out, file
    return out, "the environment" if not from_file else file


def stray_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning per `EVIDENCE_AGENT_*` variable that nothing reads."""
    out = []
    for name in sorted(environ):
        if (
            name.startswith(OWN_PREFIX)
            and not name.startswith(OVERRIDE_PREFIX)
            and name not in OWN_VARIABLES
        ):
            out.append(
                f"environment variable {name} is not read by evidence-agent: config overrides "
                "need two underscores, EVIDENCE_AGENT__SECTION__KEY (e.g. "
                f"EVIDENCE_AGENT__STATION__ID); the single-underscore ones are "
                f"{', '.join(sorted(OWN_VARIABLES))}"
            )
    return out
