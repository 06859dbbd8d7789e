"""The package's architecture (docs/architecture.md): layers whose imports run one way, no import cycle, no long
module, only packages at the root, the run files opened by the run layer alone, and light commands without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INSVP

import insvp_cli

PACKAGE = Path(insvp_cli.__file__).resolve().parent

# bottom to top: a module may import its own layer and the layers below, never one above (docs/architecture.md)
LAYERS = ("common", "config", "runtime", "backbone", "data", "methods", "resolve", "runs", "train", "use", "figures",
          "serve", "experiments", "cli")
# the files of a run folder: only the run layer opens them
RUN_FILES = ("config.yaml", "best.pt", "last.pt", "resume.pt", "summary.json", "metrics.jsonl")
MAX_LINES = 400


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


def layer(module: str) -> int:
    """The layer of a module: its first package under ``insvp_cli``; the package root is above every layer."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


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


def test_cycles_and_upward_imports_are_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None
    assert layer("insvp_cli.common.errors") < layer("insvp_cli.runs.folder") < layer("insvp_cli.cli.app")
    assert layer("insvp_cli") == len(LAYERS)


def test_every_package_is_a_layer_and_the_root_holds_only_packages():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(LAYERS)
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py"]


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert len(graph) > 100 and "insvp_cli.train.new_or_resume" in graph["insvp_cli.cli.train"]
    assert "insvp_cli.experiments.sweep.plot" in graph["insvp_cli.experiments.sweep.outputs"]  # a lazy import
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_imports_run_down_the_layers():
    graph = import_graph()
    upward = sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                    if layer(target) > layer(module))
    assert upward == []


def test_no_module_is_over_400_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def _string_constants(tree: ast.AST) -> list[ast.Constant]:
    """String literals of a module but its docstrings (a docstring may name a file)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_only_the_run_layer_opens_run_files():
    """Outside ``insvp_cli/runs/`` no code names a run file as a path (a help text may mention one in words)."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "runs":
            continue
        for node in _string_constants(ast.parse(path.read_text())):
            if node.value in RUN_FILES:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_resolving_a_config_imports_no_torch():
    code = ("import sys; from insvp_cli.methods import METHODS; from insvp_cli.resolve.layers import resolve_config; "
            "[resolve_config(None, [f'method.name={m}', 'data.name=cifar100']) for m in METHODS.names()]; "
            "print(sorted(m for m in ('torch', 'timm', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [("--help",), ("data", "list"), ("reproduce", "table2", "--data-root", "nowhere",
                                                                    "--dry-run")])
def test_light_commands_import_no_torch(args, tmp_path):
    """Through the installed script, as a user runs it: Python's own import log names every module imported."""
    proc = subprocess.run([str(INSVP), *args], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPROFILEIMPORTTIME": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
                               "PATH": str(INSVP.parent)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "insvp_cli.cli.app" in imported
    assert "torch" not in imported and "timm" not in imported
