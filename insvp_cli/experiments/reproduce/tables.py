"""What each table of the paper is made of, as data: cells (row, column) -> the run that fills them.

A run is a recipe plus ``--set`` overrides and a run-folder name. Names are shared between tables where
the run is the same (Table 5's full row and Fig. 7's reference are Table 1's InsVP runs on CUB), so a
run trained for one table fills the others. Every table is registered in :data:`TABLES`; tests register
their own small tables the same way.

Run folders (under ``--runs``): ``<backbone>/<data folder>/<variant>``, e.g. ``vit-b16-in21k/cub/vpt``,
``vit-b16-in21k/vtab-1k/dtd/insvp``, ``swin-b-in22k/svhn/insvp``, ``vit-b16-mocov3/cub/full``.

Data folders (under ``--data-root``; each becomes ``data.root``): :data:`HTA_FOLDERS` for the HTA datasets,
``vtab-1k/<task>`` for the 19 VTAB-1k tasks (:data:`insvp_cli.data.vtab.VTAB_TASKS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ...common.errors import UsageError
from ...common.registry import Registry
from ...config.schema import DEFAULT_METHOD
from ...data.vtab import VTAB_GROUPS, VTAB_TASKS
from ...methods import METHODS
from .paper_tables import FIG7, TABLE1, TABLE2, TABLE3, TABLE4, TABLE5, TABLE5_ROWS, PublishedTable


@dataclass(frozen=True)
class RunSpec:
    """One training run.

    Attributes:
        name: the run folder under ``--runs``; equal names must mean equal runs.
        recipe: a recipe path relative to ``recipes/`` (``None``: the config defaults).
        overrides: ``--set`` values applied on top of the recipe.
        data_folder: the folder under ``--data-root`` that becomes ``data.root`` (``None``: the dataset
            ships with a package and needs no folder).
    """

    name: str
    recipe: str | None
    overrides: tuple[str, ...] = ()
    data_folder: str | None = None


@dataclass(frozen=True)
class Cell:
    """A table cell filled by a run's test accuracy; ``method`` is what ``--methods`` selects."""

    row: str
    column: str
    method: str
    run: RunSpec


@dataclass(frozen=True)
class Aggregate:
    """A column that is the mean of other columns (Table 1's ``Avg``, Table 2's group means)."""

    label: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableDef:
    """A table of the paper as runs.

    Attributes:
        name: what ``insvp reproduce`` / ``insvp report --table`` take (``table1``).
        title: one line for listings and report headings.
        row_header: the header of the first column (``method``, ``components``, ``setting``).
        rows: every row in display order, the published-only ones included.
        columns: the columns that runs fill.
        cells: the runs, one per filled cell.
        aggregates: mean columns computed from ``columns``.
        display: the column order of the report (default: ``columns`` then the aggregates).
        published: the paper's numbers for this table.
    """

    name: str
    title: str
    row_header: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[Cell, ...]
    aggregates: tuple[Aggregate, ...] = ()
    display: tuple[str, ...] = ()
    published: PublishedTable | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for cell in self.cells:
            if cell.row not in self.rows or cell.column not in self.columns:
                raise ValueError(f"{self.name}: cell ({cell.row!r}, {cell.column!r}) is outside the table")
        if not self.display:
            object.__setattr__(self, "display", (*self.columns, *(a.label for a in self.aggregates)))
        specs: dict[str, RunSpec] = {}
        for cell in self.cells:
            if specs.setdefault(cell.run.name, cell.run) != cell.run:
                raise ValueError(f"{self.name}: two different runs are both named {cell.run.name!r}")

    def methods(self) -> list[str]:
        """The methods of the table's cells, in order of first appearance."""
        return list(dict.fromkeys(cell.method for cell in self.cells))

    def select(self, methods: Sequence[str] | None) -> list[Cell]:
        """The cells of ``methods`` (all cells for ``None``).

        Raises:
            UsageError: a method the table has no runs for (the error lists the table's methods).
        """
        if methods is None:
            return list(self.cells)
        valid = self.methods()
        unknown = [m for m in methods if m not in valid]
        if unknown:
            raise UsageError(f"--methods: {', '.join(unknown)} not in {self.name}; its methods: {', '.join(valid)}")
        return [cell for cell in self.cells if cell.method in methods]

    def runs(self, methods: Sequence[str] | None = None) -> list[RunSpec]:
        """The distinct runs of the selected cells, in table order."""
        return list({cell.run.name: cell.run for cell in self.select(methods)}.values())


TABLES: Registry[TableDef] = Registry("table")
# `insvp reproduce --tune` sweeps each run in the folder `<run folder><TUNED_SUFFIX>`, beside the untuned run
TUNED_SUFFIX = "-tuned"


def register_table(table: TableDef) -> TableDef:
    """Add ``table`` to :data:`TABLES` (a second table of the same name is an error)."""
    return TABLES.register(table.name, table)


# --------------------------------------------------------------------------------------------------
# Building blocks

# paper column -> data folder under --data-root, which is also the recipe's stem (recipes/<folder>.yaml)
HTA_FOLDERS = {
    "DTD": "dtd", "CUB": "cub", "Birds": "nabirds", "Dogs": "stanford_dogs", "Flowers": "flowers102",
    "Food": "food101", "Cifar100": "cifar100", "Cifar10": "cifar10", "GTSRB": "gtsrb", "SVHN": "svhn",
}
FIVE = ("CUB", "Birds", "Cifar100", "GTSRB", "SVHN")  # the datasets of Tables 3 and 4

# paper row -> (method, its overrides): every registered method's rows (``paper_rows`` of its config), trained with
# its published protocol (docs/protocols.md): a run that stands for a cited work's number trains as that work did
METHOD_ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    row: (name, ("method.protocol=published", *extra))
    for name in METHODS.names() for row, extra in METHODS.get(name).config_cls.paper_rows.items()
}
# the paper's own method, whose components (Table 5) and hyper-parameters (Fig. 7) the paper studies
PAPER_METHOD = DEFAULT_METHOD
PAPER_ROW = next(row for row, (method, _) in METHOD_ROWS.items() if method == PAPER_METHOD)

# backbone key of the run folders -> recipe folder under recipes/
VIT_IN21K, SWIN_IN22K, VIT_MOCOV3 = "vit-b16-in21k", "swin-b-in22k", "vit-b16-mocov3"
RECIPE_DIRS = {VIT_IN21K: "", SWIN_IN22K: "swin/", VIT_MOCOV3: "mocov3/"}


def hta_run(backbone: str, column: str, variant: str, overrides: Iterable[str]) -> RunSpec:
    """A run on an HTA dataset with the backbone's recipe for it."""
    folder = HTA_FOLDERS[column]
    return RunSpec(f"{backbone}/{folder}/{variant}", f"{RECIPE_DIRS[backbone]}{folder}.yaml", tuple(overrides), folder)


def method_run(backbone: str, column: str, row: str) -> RunSpec:
    method, extra = METHOD_ROWS[row]
    return hta_run(backbone, column, method, (f"method.name={method}", *extra))


def method_table(name: str, title: str, published: PublishedTable, backbone: str, columns: Sequence[str],
                 rows: Sequence[str], **kwargs) -> TableDef:
    """A methods x datasets table: the paper's rows, runs for ``rows`` (those this project implements)."""
    cells = tuple(Cell(row, column, METHOD_ROWS[row][0], method_run(backbone, column, row))
                  for row in rows for column in columns)
    return TableDef(name, title, "method", tuple(published.rows), tuple(columns), cells, published=published, **kwargs)


# --------------------------------------------------------------------------------------------------
# The paper's tables

# every row of the paper's Table 1, in its order
TABLE1_ROWS = ("Full", "Linear", "Partial-1", "MLP-3", "Bias", "Sidetune", "Adapter", "AdaptFormer", "VP", "VPT",
               "DAM-VP", "ILM-VP", "Yoo et al", "E2VPT", "TransHP", "LION", "AutoVP", "InsVP")
register_table(method_table(
    "table1", "Table 1: ten HTA datasets, ViT-B/16 ImageNet-21k", TABLE1, VIT_IN21K, tuple(HTA_FOLDERS),
    TABLE1_ROWS, aggregates=(Aggregate("Avg", tuple(HTA_FOLDERS)),),
))


def vtab_run(task: str, row: str) -> RunSpec:
    method, extra = METHOD_ROWS[row]
    folder = f"vtab-1k/{task}"
    return RunSpec(f"{VIT_IN21K}/{folder}/{method}", f"vtab/{task}.yaml", (f"method.name={method}", *extra), folder)


TABLE2_ROWS = ("Full", "Linear", "Partial-1", "MLP-3", "Bias", "Sidetune", "Adapter", "VPT", "E2VPT", "InsVP")
TABLE2_GROUPS = tuple(Aggregate(group, tasks) for group, tasks in VTAB_GROUPS.items())
register_table(TableDef(
    "table2", "Table 2: VTAB-1k (19 tasks), ViT-B/16 ImageNet-21k", "method", tuple(TABLE2.rows), VTAB_TASKS,
    tuple(Cell(row, task, METHOD_ROWS[row][0], vtab_run(task, row)) for row in TABLE2_ROWS for task in VTAB_TASKS),
    aggregates=TABLE2_GROUPS, display=(*(a.label for a in TABLE2_GROUPS), *VTAB_TASKS), published=TABLE2,
    notes=("Group means are the mean of the group's task accuracies (a mean needs every task of its group).",),
))

# E2VPT's key-value prompts need a ViT's attention blocks, so on Swin it is published-only
register_table(method_table("table3", "Table 3: Swin-B ImageNet-22k", TABLE3, SWIN_IN22K, FIVE,
                            ("Full", "VP", "VPT", "DAM-VP", "InsVP")))
register_table(method_table("table4", "Table 4: ViT-B/16 MoCo v3", TABLE4, VIT_MOCOV3, FIVE,
                            ("Full", "VP", "VPT", "DAM-VP", "E2VPT", "InsVP")))

# Table 5: each row switches on one more component (paper §4.5.1); the last row is InsVP itself
COMPONENTS = ("patch_prompter", "global_prompter", "common_prompt", "specific_prompter")
VARIANTS = tuple(f"{PAPER_METHOD}-{tag}" for tag in ("none", "pl", "pl-pg", "pl-pg-pc"))
TABLE5_COLUMNS = ("CUB", "Birds", "Cifar100", "SVHN")


def ablation_run(column: str, on: int) -> RunSpec:
    """InsVP on ``column`` with the first ``on`` components of :data:`COMPONENTS` switched on."""
    if on == len(COMPONENTS):
        return method_run(VIT_IN21K, column, PAPER_ROW)  # the same run as Table 1's
    switches = [f"method.{c}={'true' if i < on else 'false'}" for i, c in enumerate(COMPONENTS)]
    return hta_run(VIT_IN21K, column, VARIANTS[on], (f"method.name={PAPER_METHOD}", *switches))


register_table(TableDef(
    "table5", "Table 5: InsVP's components, ViT-B/16 ImageNet-21k", "components", TABLE5_ROWS, TABLE5_COLUMNS,
    tuple(Cell(row, column, PAPER_METHOD, ablation_run(column, on))
          for on, row in enumerate(TABLE5_ROWS) for column in TABLE5_COLUMNS),
    published=TABLE5,
    notes=("p_l patch prompt, p_g global prompt, p_c common prompt, p_s specific prompt "
           "(method.patch_prompter, global_prompter, common_prompt, specific_prompter).",),
))

# Fig. 7: one hyper-parameter at a time around the paper's settings on CUB. The sweep runs on the `paper`
# preset, the only one whose fusion weights are the convex beta_I / beta_F that the figure varies (the
# release's fixed weights 2 and 1 are not); everything else is CUB's recipe. The points at the defaults
# (L_p 9, N_F 12 = all blocks of ViT-B, beta_I 0.7, beta_F 0.5) are one run, shared by the four sweeps.
FIG7_BASE = hta_run(VIT_IN21K, "CUB", f"{PAPER_METHOD}-paper", (f"method.name={PAPER_METHOD}", "method.preset=paper"))
FIG7_SWEEPS: dict[str, tuple[str, str, float, tuple[float, ...]]] = {
    # label: (config key, run-name tag, value at the defaults, points)
    "L_p": ("prompt_len", "Lp", 9, (1, 5, 9, 13, 17, 21)),
    "N_F": ("prompt_blocks", "NF", 12, (2, 4, 6, 8, 10, 12)),
    "beta_I": ("beta_image", "betaI", 0.7, (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)),
    "beta_F": ("beta_feature", "betaF", 0.5, (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)),
}


def sweep_run(key: str, tag: str, default: float, value: float) -> RunSpec:
    if value == default:
        return FIG7_BASE
    return RunSpec(f"{FIG7_BASE.name}-{tag}{value:g}", FIG7_BASE.recipe,
                   (*FIG7_BASE.overrides, f"method.{key}={value:g}"), FIG7_BASE.data_folder)


FIG7_CELLS = tuple(Cell(f"{label} = {value:g}", "CUB", PAPER_METHOD, sweep_run(key, tag, default, value))
                   for label, (key, tag, default, points) in FIG7_SWEEPS.items() for value in points)
register_table(TableDef(
    "fig7", "Fig. 7: L_p, N_F, beta_I and beta_F on CUB (paper preset)", "setting",
    (*(cell.row for cell in FIG7_CELLS), *FIG7.rows), ("CUB",), FIG7_CELLS, published=FIG7,
))


# --------------------------------------------------------------------------------------------------
# A few-shot table: NOAH's FGVC few-shot protocol (Zhang et al. 2022) on InsVP's datasets. Each run keeps K training
# images per class (data.shots: 1, 2, 4, 8, 16); validation and test stay whole. `insvp reproduce fewshot --seeds 3`
# trains seeds 0, 1 and 2 of every cell, each drawing its own K images (data.shot_seed follows the seed:
# insvp_cli.experiments.queue), and `insvp report` shows mean ± std (3). The columns are the datasets of NOAH's
# few-shot benchmark that this project has recipes for (Food-101, Oxford Flowers-102); the paper publishes no
# few-shot numbers, so the report has ours only.

FEWSHOT_SHOTS = (1, 2, 4, 8, 16)
FEWSHOT_SEEDS = 3  # NOAH's seeds 0, 1, 2
FEWSHOT_COLUMNS = ("Food", "Flowers")
FEWSHOT_ROWS = ("Linear", "VPT", "InsVP")


def fewshot_run(column: str, row: str, shots: int) -> RunSpec:
    """Table 1's run of ``row`` on ``column`` with ``shots`` training images per class."""
    method, extra = METHOD_ROWS[row]
    return hta_run(VIT_IN21K, column, f"{method}-{shots}shot", (f"method.name={method}", *extra, f"data.shots={shots}"))


register_table(TableDef(
    "fewshot", "Few-shot (NOAH's protocol): K training images per class, ViT-B/16 ImageNet-21k", "method",
    tuple(f"{row} {k}-shot" for row in FEWSHOT_ROWS for k in FEWSHOT_SHOTS), FEWSHOT_COLUMNS,
    tuple(Cell(f"{row} {k}-shot", column, METHOD_ROWS[row][0], fewshot_run(column, row, k))
          for row in FEWSHOT_ROWS for k in FEWSHOT_SHOTS for column in FEWSHOT_COLUMNS),
    notes=(f"K-shot: data.shots=K training images per class, validation and test whole; train with --seeds "
           f"{FEWSHOT_SEEDS} (seeds 0, 1, 2 draw their own K images) for mean ± std.",),
))
