"""The layered layout of agent/ is checked, not hoped (docs/architecture.md).

- the import-linter contract names exactly the package directories, and `lint-imports` fails
  when an upward import is written into a copy of the tree;
- no import cycle between any two modules, counting imports inside functions and under
  TYPE_CHECKING (grimp parses every import statement in a module);
- no module over 400 lines; docs/architecture.md names only paths that exist;
- the wheel carries the migrations, the systemd defaults and the driver profiles;
- migration numbers are unique and contiguous.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _contract_layers() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = cfg["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers" and c["containers"] == ["agent"]]
    assert len(layers) == 1
    return list(layers[0]["layers"])


def _packages() -> set[str]:
    return {p.parent.name for p in (ROOT / "agent").glob("*/__init__.py")}


def test_contract_lists_every_package_once_with_no_groups_or_ignores():
    layers = _contract_layers()
    assert sorted(layers) == sorted(_packages())
    assert len(layers) == len(set(layers))
    assert not [layer for layer in layers if any(c in layer for c in ":|()")]
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "ignore_imports" not in text


def test_every_package_has_a_one_line_docstring():
    for init in sorted((ROOT / "agent").rglob("__init__.py")):
        text = init.read_text(encoding="utf-8").strip()
        assert text.startswith('"""'), f"{init} has no docstring"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(exe), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_lint_imports_passes_here_and_fails_on_an_upward_import(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("agent", "drivers"):
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=ignore)
    ok = _lint_imports(tree)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The clock (bottom layer) reaching up to the CLI, hidden inside a function.
    clock = tree / "agent" / "core" / "clock.py"
    clock.write_text(
        clock.read_text(encoding="utf-8")
        + "\n\ndef _upward() -> None:\n    from agent.cli import main  # noqa: F401\n",
        encoding="utf-8",
    )
    bad = _lint_imports(tree)
    assert bad.returncode != 0
    assert "agent.core.clock -> agent.cli.main" in bad.stdout

    # drivers/ importing agent/ under TYPE_CHECKING is caught too.
    clock.write_text(clock.read_text(encoding="utf-8").split("\n\ndef _upward")[0] + "\n")
    base = tree / "drivers" / "text.py"
    base.write_text(
        base.read_text(encoding="utf-8")
        + "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
        + "    from agent.core import ids  # noqa: F401\n",
        encoding="utf-8",
    )
    bad = _lint_imports(tree)
    assert bad.returncode != 0
    assert "drivers.text -> agent.core.ids" in bad.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    deps = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(deps))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_import_cycle_between_modules():
    graph = grimp.build_graph("agent", "drivers", include_external_packages=False)
    # Packages import nothing but their docstring; a cycle is between modules.
    modules = {m for m in graph.modules if m not in ("agent", "drivers")}
    assert _cycles(graph, modules) == []


def test_cycle_finder_sees_a_cycle():
    graph = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(m)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph, {"a.x", "a.y", "a.z"}) == [["a.x", "a.y"]]


def test_no_module_over_400_lines():
    long = {}
    for pkg in ("agent", "drivers"):
        for f in (ROOT / pkg).rglob("*.py"):
            n = len(f.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                long[str(f.relative_to(ROOT))] = n
    assert long == {}


def test_no_complexity_escape_hatches_in_the_product():
    pattern = re.compile(r"noqa:[^\n]*(C901|PLR0912|PLR0915)")
    hits = [
        str(f.relative_to(ROOT))
        for pkg in ("agent", "drivers")
        for f in (ROOT / pkg).rglob("*.py")
        if pattern.search(f.read_text(encoding="utf-8"))
    ]
    assert hits == []
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lint = cfg["tool"]["ruff"]["lint"]
    assert {"C90", "PLR0912", "PLR0915"} <= set(lint["select"])
    assert lint["mccabe"]["max-complexity"] <= 10
    assert lint["pylint"]["max-branches"] <= 12 and lint["pylint"]["max-statements"] <= 50
    for glob in lint.get("per-file-ignores", {}):
        assert not glob.startswith(("agent", "drivers")), glob


def test_architecture_doc_names_only_existing_paths_and_design_md_is_gone():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:agent|drivers|simulators|tests|bench|docs)/[\w./-]*)`", doc))
    assert len(paths) > 30
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert missing == []
    for pkg in _packages():
        assert f"`agent/{pkg}/`" in doc, f"docs/architecture.md does not describe agent/{pkg}/"
    stale = []
    for pattern in ("agent/**/*.py", "drivers/**/*.py", "docs/**/*.md", "README.md"):
        for f in ROOT.glob(pattern):
            if "DESIGN.md" in f.read_text(encoding="utf-8"):
                stale.append(str(f.relative_to(ROOT)))
    assert stale == []


def test_migration_numbers_are_unique_and_contiguous():
    folder = ROOT / "agent" / "ledger" / "migrations"
    numbers = sorted(
        int(m.group(1))
        for f in folder.iterdir()
        if (m := re.match(r"^(\d{4})_\w+\.(sql|py)$", f.name))
    )
    assert numbers == list(range(1, len(numbers) + 1))


@pytest.mark.slow
def test_wheel_carries_migrations_defaults_and_profiles(tmp_path):
    # An editable install reads these from the checkout and would hide a missing
    # package-data entry; the wheel is what a station installs.
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("evidence_agent-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = {n for n in names if n.startswith("agent/ledger/migrations/")}
    on_disk = {
        f"agent/ledger/migrations/{f.name}"
        for f in (ROOT / "agent" / "ledger" / "migrations").iterdir()
        if f.suffix in (".sql", ".py")
    }
    assert on_disk <= migrations
    defaults = {
        str(f.relative_to(ROOT)) for f in (ROOT / "agent" / "defaults").rglob("*") if f.is_file()
    }
    assert defaults and defaults <= names
    profiles = {
        f"drivers/profiles/{f.name}" for f in (ROOT / "drivers" / "profiles").glob("*.toml")
    }
    assert profiles and profiles <= names
    assert "agent/cli/main.py" in names and "agent/archive/s3/store.py" in names
    # The fleet dashboard that `demo --mqtt` serves, with the vendored MQTT.js and its licence.
    dashboard = {
        str(f.relative_to(ROOT))
        for f in (ROOT / "dashboard").rglob("*")
        if f.is_file() and "__pycache__" not in f.parts
    }
    assert "dashboard/vendor/mqtt.min.js" in dashboard and dashboard <= names
    assert "agent/console/templates/bays.html" in names  # the dock console's pages
