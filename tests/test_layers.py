"""The package's structure: one-way layers, no import cycle, and the bottom layers free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import insvp_cli

PACKAGE = Path(insvp_cli.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph() -> dict[str, set[str]]:
    """Every module of the package -> the package modules it imports, anywhere in its code: lazy imports and
    imports under ``if TYPE_CHECKING:`` too (a type-only cycle still ties two modules together)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path.name == "__init__.py", node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or ``None``. A package's ``__init__`` importing its
    own submodules is the package importing its parts, not a cycle through the package."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = 1, stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(f"{node}."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node], _ = 2, stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycles_are_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert len(graph) > 50 and "insvp_cli.train.new_or_resume" in graph["insvp_cli.cli.train"]
    assert "insvp_cli.figures.sweep_plot" in graph["insvp_cli.experiments.sweep.outputs"]  # a lazy import
    assert "insvp_cli.experiments.sweep.rows" in graph["insvp_cli.figures.sweep_plot"]  # a type-only import
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_module_is_over_450_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {name: n for name, n in lengths.items() if n > 450}
    assert long == {}


def test_bottom_layers_do_not_depend_on_upper_ones():
    graph = import_graph()
    assert graph["insvp_cli.config.protocols"] == set()  # training protocols: plain data beside the configs
    assert graph["insvp_cli.config.schema"] <= {"insvp_cli.common.errors", "insvp_cli.config.protocols"}
    assert not any(m.startswith("insvp_cli.methods") for m in graph["insvp_cli.config.schema"])
    configs = {m for m in graph if m.startswith("insvp_cli.methods.") and m.endswith("config")}
    for module in configs:  # method configs import configs only: no torch, no model
        assert graph[module] <= {"insvp_cli.config.schema", "insvp_cli.common.errors", "insvp_cli.config.protocols", *configs}, module


def test_resolving_a_config_imports_no_torch():
    code = ("import sys; from insvp_cli.methods import METHODS; from insvp_cli.resolve.layers import resolve_config; "
            "[resolve_config(None, [f'method.name={m}']) for m in METHODS.names()]; "
            "print(sorted(m for m in ('torch', 'timm', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
