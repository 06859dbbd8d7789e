"""One page per registered method, from the registry (``insvp_cli.methods.METHODS``) and the method's own code.

A page holds what its package already says: the package docstring (what the method is, its paper, where ours
differs from the authors' code), its config module's notes, every ``method.*`` key with its default, type, valid
range and meaning (the config dataclass and its docstring), its published training protocol (``published``) and
the rows of the paper's tables it stands for (``paper_rows``, with the published numbers and the ``insvp
reproduce`` tables that train it). A method registered tomorrow gets its page with no edit here or in the site's
navigation (``docs/hooks.py`` lists the pages under "Methods").
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .rst import inline, markdown

FOLDER = "methods"  # the pages' folder in the site: methods/<name>.md
DOCS = Path(__file__).resolve().parents[1]
_DOCS_FILE = re.compile(r"(?<![`/\w])docs/([\w-]+)\.md")  # a page of this site named in a docstring, outside code


def link_pages(text: str) -> str:
    """``docs/protocols.md`` in a docstring as a link to that page (from a page one folder down)."""
    return _DOCS_FILE.sub(lambda m: f"[{m[0]}](../{m[1]}.md)" if (DOCS / f"{m[1]}.md").is_file() else m[0], text)


def method_names() -> list[str]:
    """Every registered method, sorted by name."""
    from insvp_cli.methods import METHODS

    return METHODS.names()


def page_path(name: str) -> str:
    """The page of method ``name``, relative to ``docs/``."""
    return f"{FOLDER}/{name}.md"


def attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a class docstring (its bases' first) as ``{field: text}``; an entry that names
    several fields (``a, b: text``) documents each of them."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        lines = inspect.cleandoc(klass.__dict__.get("__doc__") or "").splitlines()
        if "Attributes:" not in lines:
            continue
        entries: list[str] = []
        for line in lines[lines.index("Attributes:") + 1:]:
            if not line.startswith(" " * 4) or not line.strip():
                break  # the section ends at a blank or unindented line
            if line.startswith(" " * 8):
                entries[-1] += " " + line.strip()  # a continuation line
            else:
                entries.append(line.strip())
        for entry in entries:
            names, text = entry.split(":", 1)
            docs.update({name.strip(): text.strip() for name in names.split(",")})
    return docs


def _type(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        kinds = [_type(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or `null`" if type(None) in args else "")
    if origin is not None:
        return f"list of {_type(args[0])}" if origin is list and args else getattr(origin, "__name__", str(origin))
    return {"int": "integer", "float": "number", "str": "text", "bool": "`true` / `false`"}.get(
        getattr(tp, "__name__", ""), str(tp))


def _value(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_table(cls: type) -> list[str]:
    """The ``method.*`` keys of a method config: key, default (what a run with no recipe gets), type and valid
    values, meaning; the method's own keys first, then those every method has."""
    from insvp_cli.config.schema import MethodConfig

    hints, docs, defaults = typing.get_type_hints(cls), attribute_docs(cls), cls()
    common = {f.name for f in dataclasses.fields(MethodConfig)}
    fields = [f for f in dataclasses.fields(cls) if f.name != "name"]
    fields.sort(key=lambda f: f.name in common)  # stable: the method's own keys keep their order
    rows = ["| `method.` key | default | type, valid values | what it is |", "|---|---|---|---|"]
    for f in fields:
        bounds = f.metadata.get("bounds")
        kind = _type(hints[f.name]) + (f", {bounds.describe()}" if bounds else "")
        rows.append(f"| `{f.name}` | {_value(getattr(defaults, f.name))} | {_cell(kind)} | "
                    f"{_cell(inline(docs.get(f.name, '')))} |")
    return rows


def _keys(group: str, values: Mapping[str, Any]) -> list[str]:
    return [f"| `{group}.{key}` | {_cell(_value(value))} |" for key, value in values.items()]


def protocol_section(cls: type) -> list[str]:
    """What ``method.protocol: published`` trains with, key by key, and its source."""
    from insvp_cli.config.schema import MethodConfig

    protocol = cls.published
    if protocol is MethodConfig.published:
        return ["No protocol of its authors' is declared: `method.protocol: published` trains it with the shared",
                "protocol, as `shared` does ([training protocols](../protocols.md))."]
    keys = [*_keys("train", protocol.train), *_keys("data", protocol.data), *_keys("method", protocol.method)]
    lines = [f"`method.protocol: published` trains it as its authors did. Source: {inline(protocol.source)}."]
    if not keys:
        return [*lines, "It sets no key of its own: its authors' protocol is the shared one (the `train` defaults)."]
    lines += ["These keys replace the recipes' `train` and `data` keys; the `method` keys sit under the recipes'",
              "([training protocols](../protocols.md)).", "", "| key | value |", "|---|---|", *keys]
    if protocol.base_lrs:
        lrs = ", ".join(f"{lr:g}" for lr in protocol.base_lrs)
        lines.append(f"| `insvp sweep` learning rates, per 256 images (scaled to `data.batch_size`) | {lrs} |")
    if protocol.weight_decays:
        lines.append(f"| `insvp sweep` weight decays | {', '.join(f'{wd:g}' for wd in protocol.weight_decays)} |")
    return lines


def paper_section(name: str, cls: type) -> list[str]:
    """The rows of the paper's tables the method stands for: the published numbers and how to train them."""
    from insvp_cli.experiments.reproduce.tables import TABLES

    if not cls.paper_rows:
        return ["No row of the paper's tables stands for this method."]
    rows = ", ".join(row + (f" with `{' '.join(sets)}`" if sets else "") for row, sets in cls.paper_rows.items())
    lines = [f"Rows of the paper's tables this method stands for (`paper_rows`: {rows}), with the published top-1",
             "test accuracy (%) and the runs `insvp reproduce` trains for them."]
    for table_name in sorted(TABLES.names(), key=lambda t: (not t.startswith("table"), t)):  # the paper's first
        table = TABLES.get(table_name)
        cells = [cell for cell in table.cells if cell.method == name]
        if not cells:
            continue
        runs = len({cell.run.name for cell in cells})
        lines += ["", f"### {table.title}", "",
                  f"`insvp reproduce {table.name} --methods {name}` trains {runs} run{'s' * (runs != 1)}."]
        published = table.published
        shown = [row for row in dict.fromkeys(cell.row for cell in cells) if published and row in published.rows]
        if not shown:
            lines.append("The paper publishes no number for it in this table.")
            continue
        lines += ["", "| row | " + " | ".join(published.columns) + " |",
                  "|---|" + "---:|" * len(published.columns)]
        for row in shown:
            label = row + (f" (paper: {published.backbones[row]})" if row in published.backbones else "")
            values = ("" if v is None else f"{v:.1f}" for v in published.rows[row])
            lines.append(f"| {label} | " + " | ".join(values) + " |")
    return lines


def _docstring(module: str) -> str:
    return importlib.import_module(module).__doc__ or ""


def method_page(name: str) -> str:
    """The Markdown page of registered method ``name``."""
    from insvp_cli.config.schema import MethodConfig
    from insvp_cli.methods import METHODS

    spec = METHODS.get(name)
    cls = spec.config_cls
    package = f"insvp_cli.methods.{name}"
    # the config module's first paragraph names the class; what follows (presets, fidelity notes) belongs here
    notes = re.split(r"\n\s*\n", inspect.cleandoc(_docstring(f"{package}.config")), maxsplit=1)[1:]
    # the title: the method's name and what its docstring calls it ("Visual prompt tuning (Jia et al., ...)")
    called = re.split(r" \(|:", inspect.cleandoc(_docstring(package)).splitlines()[0], maxsplit=1)[0]
    lines = [f"# {name}: {called}", "", markdown(_docstring(package)).rstrip(), "",
             f"Selected by `method.name: {name}` (`--set method.name={name}`); its code is `{package}`",
             f"(`{cls.__name__}` in `config.py`, `{spec.model}` in `model.py`).", ""]
    needs = cls().requires()
    if needs:
        lines += [f"It needs from the data: {', '.join(f'`{n}`' for n in needs)} (checked before anything trains).", ""]
    lines += ["## Configuration", ""]
    if notes:
        lines += [markdown(notes[0]).rstrip(), ""]
    if cls.dataset_defaults.__func__ is not MethodConfig.dataset_defaults.__func__:
        lines += [f"Per dataset: {inline(inspect.cleandoc(cls.dataset_defaults.__doc__ or ''))}", ""]
    lines += ["The `method.*` keys, with the default a run gets when no recipe or `--set` changes it (the",
              "[configuration](../configuration.md) page says how recipes and `--set` layer):", "",
              *config_table(cls), "", "## Published protocol", "", *protocol_section(cls), "",
              "## In the paper", "", *paper_section(name, cls), ""]
    return link_pages("\n".join(lines))


def pages() -> dict[str, str]:
    """``{path under docs/: Markdown}`` for every registered method."""
    return {page_path(name): method_page(name) for name in method_names()}
