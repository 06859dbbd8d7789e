"""The documentation site (mkdocs.yml, docs/): it builds with ``--strict``, every registered method has its page, the
command reference is what the installed script prints, and every checked example prints what its page shows
(tests/doc_examples.py says how examples are marked and compared)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INSVP, REPO
from doc_examples import collect, command_args, differences, normalise  # first: it puts docs/ on the path
from filelock import FileLock
from generate import cli, methods
from generate.rst import markdown

DOCS = REPO / "docs"

EXAMPLES = [example for page in sorted(DOCS.rglob("*.md")) for example in collect(page)]
COMMANDS = [path for path, _ in cli.commands()]  # () for insvp itself, ("data", "list"), ...
INSTALLED = Path(importlib.util.find_spec("insvp_cli").origin).parents[1]  # shown as "..." in outputs
needs_mkdocs = pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                                  reason='mkdocs is not installed: pip install -e ".[docs]" (the test extra has it)')


def run(args: list[str], cwd: Path, stdout_only: bool = False, timeout: float = 600) -> str:
    """What a command prints on a 100-column terminal, offline, stderr in its place among stdout's lines."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": str(cli.WIDTH), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, text=True, timeout=timeout, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL if stdout_only else subprocess.STDOUT)
    assert "Traceback" not in result.stdout, result.stdout
    return result.stdout


@pytest.fixture(scope="session")
def quickstart_folder(tmp_path_factory) -> Path:
    """A folder where ``insvp quickstart`` has run, with ``digit-8.png`` and ``photos/`` (that digit and a text file):
    trained once per test session, shared by the xdist workers (the first one trains, under a lock)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "docs-quickstart"  # the session's folder, above the workers'
    else:
        folder = tmp_path_factory.mktemp("docs-quickstart")
    with FileLock(f"{folder}.lock"):
        if not (folder / "runs" / "quickstart" / "comparison.md").is_file():
            folder.mkdir(exist_ok=True)
            run([str(INSVP), "quickstart"], folder, timeout=1800)
            shutil.copy(DOCS / "digit-8.png", folder / "digit-8.png")
            (folder / "photos").mkdir(exist_ok=True)
            shutil.copy(DOCS / "digit-8.png", folder / "photos" / "digit-8.png")
            (folder / "photos" / "notes.txt").write_text("not an image\n")
    return folder


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.name for example in EXAMPLES])
def test_a_checked_example_prints_what_its_page_shows(example, tmp_path, request):
    cwd = request.getfixturevalue("quickstart_folder") if example.options.get("in") == "quickstart" else tmp_path
    for source, shown in example.runs:
        if example.kind == "python":
            args, what = [sys.executable, "-c", source], "the python block"
        else:
            args, what = command_args(source, INSVP), f"$ {source}"
        printed = normalise(run(args, cwd, stdout_only="stdout" in example.options), INSTALLED)
        found = differences(shown, printed, example.options)
        assert not found, f"{example.page.relative_to(REPO)}:{example.line}, {what}:\n" + "\n".join(
            [*found, "printed:", *printed])


def test_the_examples_cover_every_offline_command_of_the_guide():
    commands = {" ".join(source.split()[1:3]) for example in EXAMPLES if example.kind == "console"
                for source, _ in example.runs}
    for command in ("quickstart", "params --method", "params --compare", "data list", "recipes", "report --table"):
        assert command in commands, f"no checked example of insvp {command}"
    assert any(example.kind == "python" and "insvp_cli.predict" in example.runs[0][0] for example in EXAMPLES)
    assert any(example.options.get("in") == "quickstart" and example.kind == "console" for example in EXAMPLES)


def test_a_changed_output_is_found():
    shown = "│ insvp  │ 83,669 │   94.50 │ 354.18 │\nInsVP test accuracy 96.40%"
    header = ["┃ method ┃ extra ┃ val acc ┃ images/s ┃"]
    options = {"tolerance": "2.5", "vary": "images/s"}
    printed = ["│ insvp  │ 83,669 │   95.50 │  50.07 │", "InsVP test accuracy 95.60%"]
    assert differences("\n".join([*header, shown]), [*header, *printed], options) == []
    for changed in (["│ insvp  │ 83,670 │   95.50 │  50.07 │", printed[1]],  # an exact integer
                    ["│ insvp  │ 83,669 │   90.50 │  50.07 │", printed[1]],  # an accuracy beyond the tolerance
                    [printed[0], "InsVP test accuracy 95.60 %"]):  # the text
        assert differences("\n".join([*header, shown]), [*header, *changed], options), changed
    assert differences("a\nb", ["a"], {}) == ["1 lines printed, 2 shown"]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("insvp", *path)))
def test_the_reference_shows_what_the_script_prints(path, tmp_path):
    printed = run([str(INSVP), *path, "--help"], tmp_path)
    assert cli.plain(printed) == cli.help_text(path)


def test_the_readme_shows_the_checked_quickstart_numbers():
    """The README's quickstart table holds the numbers of the checked quickstart output (docs/getting-started.md)."""
    readme = {row[0]: row[1:] for row in (line.strip("|").split("|") for line in
              (REPO / "README.md").read_text().splitlines() if re.match(r"\| (insvp|linear) \|", line))}
    checked = next(shown for example in EXAMPLES for command, shown in example.runs if command == "insvp quickstart")
    shown = {cells[1]: cells[2:-1] for cells in (line.split("│") for line in checked.splitlines() if "│" in line)}
    assert {name.strip(): [v.strip() for v in values] for name, values in readme.items()} == {
        name.strip(): [v.strip() for v in values] for name, values in shown.items()}


def test_the_scripts_beside_the_docs_import_names_the_package_has():
    """``docs/make_figures.sh``, the docs' and the benchmarks' scripts import what exists (a moved function would
    break them unseen: none of them runs in the suite whole)."""
    scripts = [*(REPO / "docs").glob("*.sh"), *(REPO / "docs").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    imports = [(script.name, module, names) for script in scripts for module, names in
               re.findall(r"^\s*from (insvp_cli[\w.]*) import ([\w, ]+)", script.read_text(), flags=re.MULTILINE)]
    assert len({name for name, _, _ in imports}) >= 10
    missing = [f"{script}: {module}.{name}" for script, module, names in imports
               for name in (n.strip() for n in names.split(",") if n.strip())
               if not hasattr(importlib.import_module(module), name)]
    assert not missing


def test_docstring_markup_becomes_markdown():
    text = markdown("""Uses ``G_s`` (:func:`~insvp_cli.runs.trained.load_model`, :class:`the model <Method>`):
    - one
      two
    - three

    The formula::

        x = a + b

    ======  ===========
    hook    default
    ======  ===========
    ``a``   one | two
            three
    ``b``   four
    ======  ===========
    """)
    assert text.splitlines() == ["Uses `G_s` (`load_model`, the model):", "", "- one", "  two", "- three", "",
                                 "The formula:", "", "```text", "x = a + b", "```", "", "", "| hook | default |",
                                 "|---|---|", "| `a` | one \\| two three |", "| `b` | four |"]


def test_every_method_key_is_described_on_its_page():
    """A method's page takes each key's meaning from its config's docstring (``Attributes:``): none may be missing."""
    from insvp_cli.methods import METHODS

    for name in METHODS.names():
        config = METHODS.get(name).config_cls
        described = methods.attribute_docs(config)
        missing = [f.name for f in dataclasses.fields(config) if f.name not in described]
        assert not missing, f"{config.__name__}'s docstring does not describe {missing} under Attributes:"


@needs_mkdocs
def test_the_site_builds_strict_with_a_page_per_method_and_command(tmp_path):
    from insvp_cli.methods import METHODS

    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                            capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr
    for name in METHODS.names():
        page = site / "methods" / name / "index.html"
        assert page.is_file(), f"no page for method {name}"
        assert f"method.name: {name}" in page.read_text()
    reference = (site / "reference" / "cli" / "index.html").read_text()
    assert all(f'id="{"-".join(("insvp", *path))}"' in reference for path in COMMANDS)
    api = (site / "reference" / "api" / "index.html").read_text()
    for name in ("load_model", "load_transform", "predict", "config.schema.TrainConfig", "config.schema.MethodConfig",
                 "methods.METHODS", "methods.register_method", "methods.base.Method.image_prompts"):
        assert f'id="insvp_cli.{name}"' in api, name
