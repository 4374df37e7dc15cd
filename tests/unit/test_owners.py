"""One owner per fact: every table and every event has its declared writer.

The owners are the tables "Who owns which table" and "Who emits which event" in
docs/architecture.md. The writes are found in the code itself: every SQL string literal under
agent/ (constants and the constant parts of f-strings) that inserts into, updates, replaces
into or deletes from a table, and every `events.emit(conn, "<type>", ...)` or
`transition(..., event="<type>")`. The tables come from the schema that the migrations build,
so a new table without a declared owner fails here.
"""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

from agent.ledger.db import Ledger

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "agent"
DOC = ROOT / "docs" / "architecture.md"
# Migrations build and convert every table; they are the schema, not a writer at run time.
SKIPPED = ("agent/ledger/migrations/",)
WRITE = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)"
    r"\s+([A-Za-z_][A-Za-z0-9_]*)"
)
# Modules whose emit takes its type from a variable: the one transition() forwards its
# caller's `event=` (checked at the caller), the compliance engine its alert types.
FORWARDERS = {"agent/ledger/recordings.py", "agent/compliance/engine.py"}


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(AGENT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if not rel.startswith(SKIPPED):
            out.append((rel, ast.parse(path.read_text(encoding="utf-8"), rel)))
    return out


def _skipped(tree: ast.Module) -> set[int]:
    """Docstrings (and other bare string statements) and the parts of f-strings."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            ids.add(id(node.value))
        if isinstance(node, ast.JoinedStr):
            ids |= {id(n) for n in ast.walk(node) if n is not node}
    return ids


def _literals(tree: ast.Module) -> list[str]:
    """Every string literal of the module but its docstrings; an f-string's holes read `?`."""
    skip, out = _skipped(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and id(node) not in skip:
            out.append(
                "".join(str(v.value) if isinstance(v, ast.Constant) else "?" for v in node.values)
            )
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            out.append(node.value)
    return out


def _schema_tables(tmp_path: Path) -> set[str]:
    ledger = Ledger(tmp_path / "ledger.db")
    try:
        rows = ledger.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    finally:
        ledger.close()
    return {str(r["name"]) for r in rows if not str(r["name"]).startswith("sqlite_")}


def _doc_table(heading: str) -> list[tuple[list[str], set[str]]]:
    """The rows of the markdown table under `heading`: (names, owner module paths)."""
    text = DOC.read_text(encoding="utf-8")
    assert f"## {heading}" in text, f"{DOC} has no section '## {heading}'"
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or set(cells[0]) <= {"-"} or cells[0] in ("table", "events"):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        owners = set(re.findall(r"`(agent/[\w/]+\.py)`", cells[1]))
        if "triggers of migration" in cells[1]:
            owners.add("agent/ledger/migrations/")  # SQL triggers keep the table in step
        rows.append((names, owners))
    return rows


def _owners(rows: list[tuple[list[str], set[str]]], name: str) -> set[str]:
    found: set[str] = set()
    for names, owners in rows:
        if any(fnmatch(name, n) or fnmatch(n, name) for n in names):
            found |= owners
    return found


def _writes(tables: set[str]) -> dict[str, set[str]]:
    """table -> the modules whose SQL literals write it."""
    out: dict[str, set[str]] = {}
    for rel, tree in _modules():
        for text in _literals(tree):
            for table in WRITE.findall(text):
                if table in tables:
                    out.setdefault(table, set()).add(rel)
    return out


def _event_type(node: ast.expr) -> str | None:
    """A literal event type; an f-string's holes become `*`; None when not a literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(str(v.value) if isinstance(v, ast.Constant) else "*" for v in node.values)
    return None


def _emit_arg(call: ast.Call) -> ast.expr | None:
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr == "emit":
        is_events = isinstance(f.value, ast.Name) and f.value.id == "events"
        return call.args[1] if is_events and len(call.args) > 1 else None
    if isinstance(f, ast.Attribute) and f.attr == "transition":
        return next((k.value for k in call.keywords if k.arg == "event"), None)
    return None


def _emits() -> tuple[dict[str, set[str]], list[str]]:
    """event type -> modules emitting it; and the dynamic emits outside the forwarders."""
    out: dict[str, set[str]] = {}
    dynamic = []
    for rel, tree in _modules():
        for node in ast.walk(tree):
            arg = _emit_arg(node) if isinstance(node, ast.Call) else None
            if arg is None:
                continue
            type_ = _event_type(arg)
            if type_ is None:
                if rel not in FORWARDERS:
                    dynamic.append(f"{rel}:{node.lineno}")
                continue
            out.setdefault(type_, set()).add(rel)
    return out, dynamic


def test_every_table_has_a_declared_owner_and_only_it_writes(tmp_path: Path) -> None:
    tables = _schema_tables(tmp_path)
    rows = _doc_table("Who owns which table")
    unowned = sorted(t for t in tables if not _owners(rows, t))
    assert not unowned, (
        f"tables with no owner in {DOC} 'Who owns which table': {unowned}; add a row naming "
        "the one module that writes each"
    )
    strays = {
        table: sorted(mods - _owners(rows, table))
        for table, mods in _writes(tables).items()
        if mods - _owners(rows, table)
    }
    assert not strays, (
        f"modules writing a table they do not own: {strays}; move the write into the owner "
        f"(a small named function) or declare the second writer and why in {DOC}"
    )


def _modules_only(owners: set[str]) -> set[str]:
    return owners - {"agent/ledger/migrations/"}


def test_one_writer_module_per_table_can_be_declared(tmp_path: Path) -> None:
    """A second writer cannot be declared: one module per row (besides migration triggers),
    one module per table across the rows, and the code agrees."""
    tables = _schema_tables(tmp_path)
    rows = _doc_table("Who owns which table")
    crowded = [names for names, owners in rows if len(_modules_only(owners)) > 1]
    assert not crowded, (
        f"rows of {DOC} 'Who owns which table' naming more than one module: {crowded}; "
        "give the table one owner module with a named function per write, which the others call"
    )
    several = {
        t: sorted(_modules_only(_owners(rows, t)))
        for t in sorted(tables)
        if len(_modules_only(_owners(rows, t))) > 1
    }
    assert not several, f"tables declared with several writers in {DOC}: {several}"
    written = {t: sorted(m) for t, m in _writes(tables).items() if len(m) > 1}
    assert not written, f"tables whose SQL writes sit in several modules: {written}"


def test_recordings_have_one_writer_module(tmp_path: Path) -> None:
    writes = _writes(_schema_tables(tmp_path))
    assert writes["recordings"] == {"agent/ledger/recordings.py"}
    assert writes["custody"] == {"agent/ledger/custody.py"}


def test_every_event_has_a_declared_emitter() -> None:
    rows = _doc_table("Who emits which event")
    emits, dynamic = _emits()
    assert not dynamic, (
        f"events.emit with a computed type at {dynamic}: name the type as a literal so its "
        "owner can be checked"
    )
    assert "recording.released" in emits and "ingest.completed" in emits
    strays = {
        t: sorted(mods - _owners(rows, t)) for t, mods in emits.items() if mods - _owners(rows, t)
    }
    assert not strays, (
        f"events emitted by a module not declared in {DOC} 'Who emits which event': {strays}"
    )
    # A forwarder's types are computed (the compliance engine's alerts): not checkable here.
    declared = {n for names, owners in rows if not owners & FORWARDERS for n in names}
    stale = sorted(n for n in declared if not any(fnmatch(t, n) or fnmatch(n, t) for t in emits))
    assert not stale, f"{DOC} declares events nobody emits: {stale}"


def test_one_emitter_module_per_event_can_be_declared() -> None:
    """A second emitter cannot be declared: one module per row, one module per event."""
    rows = _doc_table("Who emits which event")
    crowded = [names for names, owners in rows if len(owners) != 1]
    assert not crowded, (
        f"rows of {DOC} 'Who emits which event' not naming exactly one module: {crowded}; "
        "give the event one emitting function in the lowest layer its callers can import"
    )
    emits, _ = _emits()
    several = {t: sorted(m) for t, m in emits.items() if len(m) > 1}
    assert not several, f"events emitted from several modules: {several}"


def test_the_scanner_sees_a_stray_write() -> None:
    """The parser itself: an f-string UPDATE and a plain INSERT are found, prose is not."""
    tree = ast.parse(
        '"""UPDATE recordings in a docstring."""\n'
        'x = f"UPDATE recordings SET {a}=? WHERE id=?"\n'
        'y = "INSERT OR REPLACE INTO kv(key) VALUES(?)"\n'
        'z = "ON CONFLICT(key) DO UPDATE SET value = 1"\n'
    )
    found = [t for s in _literals(tree) for t in WRITE.findall(s)]
    assert found == ["recordings", "kv", "SET"]
