"""The layers of docs/architecture.md hold: import-linter contracts, no import cycles, no cross-package privates."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "detectors", "evaluators", "dashboards")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == "layers"]
    return [[m.strip() for m in layer.split("|")] for layer in layers]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``from lookout_module import _name`` where the module is in another package than ``path``."""
    own = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or not node.module or node.module.split(".")[0] not in PACKAGES:
            continue
        package = node.module if (root / node.module.replace(".", "/")).is_dir() else node.module.rpartition(".")[0]
        for alias in node.names:
            if alias.name.startswith("_") and package != own:
                out.append(f"{path.relative_to(root)}:{node.lineno} imports {alias.name} from {node.module}")
    return out


class TestLayers:
    """import-linter keeps the written layer order."""

    def test_contracts_are_kept(self) -> None:
        """`lint-imports` passes on the tree: layers, pure detectors, no cycles between sibling packages."""
        result = _lint(ROOT)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "3 kept, 0 broken" in result.stdout

    def test_an_upward_import_breaks_a_contract(self, tmp_path: Path) -> None:
        """A scratch copy where a detector imports the CLI and storage imports the runner fails, naming both."""
        for package in PACKAGES:
            shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
        with (tmp_path / "detectors" / "types.py").open("a", encoding="utf-8") as f:
            f.write("\nimport agent.cli  # noqa: E402\n")
        with (tmp_path / "agent" / "storage" / "client.py").open("a", encoding="utf-8") as f:
            f.write("\n\ndef _late() -> None:\n    from agent import runner  # noqa: F401\n")
        result = _lint(tmp_path)
        assert result.returncode == 1
        assert "Layers: each module imports only from the layers below it BROKEN" in result.stdout
        assert "detectors/ is pure scoring: it imports nothing else of lookout's BROKEN" in result.stdout
        assert "detectors.types -> agent.cli" in result.stdout
        assert "agent.storage.client -> agent.runner" in result.stdout

    def test_every_agent_module_is_in_a_layer(self) -> None:
        """A new module of agent/ must be placed in a layer (import-linter leaves unlisted modules unchecked)."""
        named = {m for layer in _layers() for m in layer}
        graph = grimp.build_graph("agent")
        tops = {".".join(m.split(".")[:2]) for m in graph.modules if m != "agent"}
        assert sorted(tops - named) == []

    def test_docs_list_the_layers_in_order(self) -> None:
        """docs/architecture.md's layer table has one row per layer, top to bottom, as in pyproject.toml."""
        text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
        table = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        documented = [[m.strip(" `") for m in row.split(" | ")[0].strip("| ").split("\\|")] for row in rows]
        assert documented == _layers()


class TestImports:
    """No import cycles and no private names across packages, function-level imports included."""

    def test_no_module_import_cycles(self) -> None:
        """No two first-party modules import each other, directly or through others."""
        graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
        assert _cycles(graph) == []

    def test_cycle_finder_finds_a_cycle(self) -> None:
        """The cycle check itself reports a two-module cycle."""
        graph = grimp.ImportGraph()
        for module in ("a", "a.x", "a.y", "a.z"):
            graph.add_module(module)
        graph.add_import(importer="a.x", imported="a.y")
        graph.add_import(importer="a.y", imported="a.x")
        graph.add_import(importer="a.z", imported="a.x")
        assert _cycles(graph) == [["a.x", "a.y"]]

    def test_no_private_names_imported_across_packages(self) -> None:
        """Nothing imports a ``_name`` from a module of another package (share it under a public name)."""
        found = [
            hit
            for package in PACKAGES
            for path in sorted((ROOT / package).rglob("*.py"))
            for hit in _private_imports(path)
        ]
        assert found == []

    def test_private_import_check_catches_one(self, tmp_path: Path) -> None:
        """The AST check reports a private name imported from another package."""
        (tmp_path / "evaluators").mkdir()
        module = tmp_path / "evaluators" / "scratch.py"
        module.write_text(
            "from agent.export.commands import _hidden\nfrom evaluators.heads import _own\n", encoding="utf-8"
        )
        assert _private_imports(module, tmp_path) == [
            "evaluators/scratch.py:1 imports _hidden from agent.export.commands"
        ]
