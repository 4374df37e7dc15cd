"""The ledger's append-only guards: triggers that refuse UPDATE and DELETE on the history
tables (custody, checkpoints, metadata_versions), and the check `verify` runs on them.

An attacker with write access to the file drops the triggers first, so they are no defence
alone; what they add is that `verify` compares their SQL text in sqlite_master with the text
shipped here and fails when one is missing or altered (docs/reliability.md).
"""

from __future__ import annotations

import re
import sqlite3

# The exact statements migration 0011 (custody, checkpoints) and 0003 (metadata_versions)
# create; tests/unit/test_custody_guards.py checks a fresh ledger holds these texts.
GUARDS: dict[str, str] = {
    "custody_no_update": (
        "CREATE TRIGGER custody_no_update BEFORE UPDATE ON custody\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'custody is append-only: record a new event instead');\n"
        "END"
    ),
    "custody_no_delete": (
        "CREATE TRIGGER custody_no_delete BEFORE DELETE ON custody\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'custody is append-only: events are never deleted');\n"
        "END"
    ),
    "checkpoints_no_update": (
        "CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'checkpoints are append-only: sign a new checkpoint instead');\n"
        "END"
    ),
    "checkpoints_no_delete": (
        "CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'checkpoints are append-only: checkpoints are never deleted');\n"
        "END"
    ),
    "metadata_versions_no_update": (
        "CREATE TRIGGER metadata_versions_no_update BEFORE UPDATE ON metadata_versions\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'metadata_versions is append-only: add a new version instead');\n"
        "END"
    ),
    "metadata_versions_no_delete": (
        "CREATE TRIGGER metadata_versions_no_delete BEFORE DELETE ON metadata_versions\n"
        "BEGIN\n"
        "    SELECT RAISE(ABORT, 'metadata_versions is append-only: versions are never deleted');\n"
        "END"
    ),
}

_GUARDED = ("custody", "checkpoints", "metadata_versions")


def _shipped_triggers() -> dict[str, str]:
    """Every trigger the shipped migrations create, by name, as its CREATE TRIGGER text.

    Other triggers may sit on a guarded table (migration 0009 counts untagged recordings on
    metadata_versions inserts); they are accepted only with exactly the shipped text.
    """
    import importlib.resources

    out: dict[str, str] = {}
    for res in importlib.resources.files("agent.ledger.migrations").iterdir():
        if not res.name.endswith(".sql"):
            continue
        text = res.read_text(encoding="utf-8")
        for m in re.finditer(r"CREATE TRIGGER (\w+).*?\bEND\b", text, flags=re.S):
            out[m.group(1)] = m.group(0)
    return out


def _norm(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()


def guard_problems(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(trigger name, problem) for every guard that is missing or not the shipped text, and
    for any other trigger on a guarded table (one could rewrite rows as they are inserted)."""
    found = {
        str(r[0]): (str(r[1]), str(r[2] or ""))
        for r in conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type='trigger'")
    }
    problems = []
    for name, sql in GUARDS.items():
        if name not in found:
            problems.append(
                (
                    name,
                    f"append-only trigger {name} is missing: the table's history can be "
                    "edited or deleted unseen; restore the ledger from a backup and "
                    "compare it with the archived anchors",
                )  # fmt: skip
            )
        elif _norm(found[name][1]) != _norm(sql):
            problems.append((name, f"append-only trigger {name} was altered"))
    shipped = _shipped_triggers()
    for name, (table, sql) in sorted(found.items()):
        if table not in _GUARDED or name in GUARDS:
            continue
        if name not in shipped:
            problems.append((name, f"unexpected trigger {name} on {table}"))
        elif _norm(sql) != _norm(shipped[name]):
            problems.append((name, f"trigger {name} on {table} was altered"))
    return problems
