"""``export_model``: a trained checkpoint as one file that runs outside this package.

InsVP (ACM MM 2024) computes its prompts from each input image, so the exported graph holds the whole
model: the frozen backbone, the prompt generators (``G_l``, ``G_g``, ``G_s``), the common prompts and
the head, the same for every registered method. Two formats:

- ``onnx``: one ``model.onnx`` (weights inside), input ``image`` ``(batch, 3, H, W)`` float32,
  output ``logits`` ``(batch, classes)``; needs only onnxruntime to run.
- ``pt2``: ``model.pt2`` from :func:`torch.export.export`; runs with torch alone
  (``torch.export.load(path).module()``), no insvp or timm code.

Both are traced by ``torch.export`` with a dynamic batch axis. ONNX goes through PyTorch's
``torch.export``-based ONNX exporter (``dynamo=True``), which translates every method except for one
operator: ``adaptive_max_pool2d`` (``G_s``) when the input size is not a multiple of the output size,
e.g. 30 -> 52 on a 32 px model. While tracing for ONNX, :class:`_PortablePooling` computes it by
:func:`adaptive_max_pool2d`, a gather and a max with identical values, so the graph never holds it.
PyTorch's older TorchScript-based exporter (``dynamo=False``) fails on the same operator for every size
once the batch axis is dynamic, and ``torch.jit.trace`` is deprecated in torch 2.14, so TorchScript is
not offered.

Next to the model: ``labels.json`` (class names by label) and ``preprocess.json`` (the evaluation
transform as data: resize, centre crop, interpolation, mean, std; see
:func:`insvp_cli.data.transforms.preprocess_spec`). Before anything is written, the exported file is
run on sample inputs (two batch sizes, neither the traced one) and its logits are compared with the
PyTorch model's in float32 (:func:`logit_difference`); a difference above :data:`TOLERANCE` raises
:class:`ExportMismatch` and leaves no output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair
from torch.overrides import TorchFunctionMode

from ..common.errors import UsageError, first_sentence
from ..data.transforms import input_size, preprocess_spec
from ..methods.insvp.pooling import adaptive_max_pool2d
from ..runs.trained import TrainedModel

FORMATS = ("onnx", "pt2")
MODEL_FILES = {"onnx": "model.onnx", "pt2": "model.pt2"}
# largest logit difference accepted between the exported model and PyTorch (fp32), absolute for logits up to 1 in
# magnitude and relative to the largest logit beyond (float32 keeps about 7 significant digits)
TOLERANCE = 1e-4
ONNX_MAX_BYTES = 2**31  # one protobuf file holds at most 2 GiB, weights included
INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "image", "logits", "batch"
TRACE_BATCH = 2  # the example batch torch.export traces with (1 would be specialised)
CHECK_BATCHES = (1, 3)  # verification batches: other sizes than the traced one exercise the dynamic axis
EXPORT_EXTRA = 'pip install "insvp[export]"'


class ExportMismatch(Exception):
    """The exported model's logits differ from PyTorch's by more than :data:`TOLERANCE`."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        out: the output folder.
        files: the files written into it (model, ``labels.json``, ``preprocess.json``).
        max_diff: the largest logit difference from PyTorch on the sample inputs (:func:`logit_difference`).
    """

    out: Path
    files: list[Path]
    max_diff: float


def export_model(checkpoint: str | Path, fmt: str = "onnx", out: str | Path | None = None,
                 overrides: Sequence[str] = (), on_step: Callable[[str], None] | None = None) -> ExportResult:
    """Export a checkpoint's model to ``fmt`` in ``out``, after checking it against PyTorch on sample inputs.

    Args:
        checkpoint: ``best.pt`` / ``last.pt`` or a run folder.
        fmt: ``onnx`` or ``pt2``.
        out: the output folder (default: ``export-<fmt>`` beside the checkpoint); created if needed, and
            files of an earlier export there are replaced.
        overrides: ``KEY=VALUE`` config overrides, e.g. ``backbone.weights=PATH``.
        on_step: called with a short description before each stage.

    Returns:
        An :class:`ExportResult`.

    Raises:
        UsageError: an unknown format, a missing ``insvp[export]`` extra, a bad checkpoint, a model that
            cannot be traced for ``fmt`` or one too large for a single ONNX file.
        ExportMismatch: the exported model disagrees with PyTorch; nothing was written.
    """
    step = on_step or (lambda _: None)
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not supported; valid: {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require_onnx()
    trained = TrainedModel.load(checkpoint, overrides, device="cpu")
    ckpt, cfg = trained.checkpoint, trained.config
    out = Path(out) if out is not None else ckpt.path.parent / f"export-{fmt}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    model = trained.model.float()  # in eval mode
    data_cfg = trained.transform_config
    height, width = input_size(cfg.data, data_cfg)
    if fmt == "onnx":
        size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
        if size >= ONNX_MAX_BYTES:
            raise UsageError(f"{cfg.backbone.name} holds {size / 2**30:.1f} GiB of weights; one ONNX file holds at "
                             f"most 2 GiB: use --format pt2")

    seeded = torch.Generator().manual_seed(0)
    samples = torch.randn(TRACE_BATCH + sum(CHECK_BATCHES), 3, height, width, generator=seeded)
    example, *checks = samples.split([TRACE_BATCH, *CHECK_BATCHES])
    step(f"tracing {cfg.method.name} with torch.export")
    program = _trace(model, example, cfg.method.name, fmt)

    # everything is written into a hidden folder beside ``out`` and moved into place once checked
    # (named by hand, not tempfile.mkdtemp: its 0700 mode would stay with the published folder)
    staging = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    staging.mkdir(parents=True)
    try:
        model_file = staging / MODEL_FILES[fmt]
        step(f"writing {model_file.name}")
        if fmt == "onnx":
            run = _write_onnx(program, example, model_file, cfg.method.name)
        else:
            run = _write_pt2(program, model_file)
        step(f"checking {model_file.name} against PyTorch on sample inputs")
        with torch.inference_mode():
            diff = max(logit_difference(run(x), model(x)) for x in checks)
        if not diff <= TOLERANCE:  # also catches NaN
            raise ExportMismatch(f"the exported {fmt} model's logits differ from PyTorch's by {diff:.2e} (more than "
                                 f"{TOLERANCE:g}) on sample inputs; nothing was written to {out}")
        (staging / "labels.json").write_text(json.dumps(ckpt.classes, indent=2) + "\n")
        preprocess = {
            "input": {"name": INPUT_NAME, "shape": [BATCH_AXIS, 3, height, width], "dtype": "float32",
                      "layout": "NCHW", "channels": "RGB"},
            "output": {"name": OUTPUT_NAME, "shape": [BATCH_AXIS, len(ckpt.classes)]},
            **preprocess_spec(cfg.data, data_cfg),
            "model": {"method": cfg.method.name, "backbone": cfg.backbone.name, "format": fmt,
                      "checkpoint": str(ckpt.path), "max_diff": diff},
        }
        (staging / "preprocess.json").write_text(json.dumps(preprocess, indent=2) + "\n")
        names = sorted(p.name for p in staging.iterdir())
        _publish(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, [out / name for name in names], diff)


def logit_difference(exported: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest difference of two batches of logits, in units of ``max(1, max |reference|)``: absolute for
    logits up to 1 in magnitude, relative beyond (a model whose logits reach 400 cannot agree to 1e-4 absolute
    in float32, whatever the runtime)."""
    scale = max(1.0, float(reference.abs().max()))
    return float((exported - reference).abs().max()) / scale


def _require_onnx() -> None:
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"ONNX export needs {module}, which is not installed: {EXPORT_EXTRA}") from None


def _trace(model: torch.nn.Module, example: torch.Tensor, method: str, fmt: str) -> torch.export.ExportedProgram:
    """``torch.export`` with a dynamic batch axis; a model that cannot be traced is a usage error."""
    batch = torch.export.Dim(BATCH_AXIS, min=1, max=2**20)
    portable = _PortablePooling() if fmt == "onnx" else contextlib.nullcontext()
    try:
        with _quiet(), portable:
            return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    except Exception as exc:  # torch.export fails in many ways (graph breaks, data-dependent shapes, guards)
        raise UsageError(f"method {method} cannot be exported to {fmt}: torch.export failed "
                         f"({first_sentence(exc)})") from exc


def _quiet() -> contextlib.AbstractContextManager:
    """Keep the exporters' stderr (warnings, logs, partial graphs printed on failure) off the terminal.

    Success is decided by the numerical check and failure by the exception, which ``--debug`` shows whole.
    """
    return contextlib.redirect_stderr(io.StringIO())


def _write_onnx(program: torch.export.ExportedProgram, example: torch.Tensor, path: Path, method: str) -> Callable:
    """Translate to ONNX, save one self-contained file and return a runner over onnxruntime."""
    import onnx_ir as ir
    import onnxruntime as ort

    try:
        with _quiet():
            onnx_program = torch.onnx.export(program, (example,), input_names=[INPUT_NAME],
                                             output_names=[OUTPUT_NAME], dynamo=True, external_data=False,
                                             verbose=False)
    except Exception as exc:  # an operator without an ONNX translation
        raise UsageError(f"method {method} cannot be exported to onnx: {first_sentence(exc)}") from exc
    graph = onnx_program.model.graph
    for value in (*graph.inputs, *graph.outputs):
        # the symbol torch.export made up for the batch axis (s77, ...) -> "batch" in the file's signature
        value.shape = ir.Shape([BATCH_AXIS, *value.shape[1:]])
    onnx_program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])


def _write_pt2(program: torch.export.ExportedProgram, path: Path) -> Callable:
    """Save with ``torch.export.save`` and return the reloaded module."""
    torch.export.save(program, path)
    return torch.export.load(path).module()


def _publish(staging: Path, out: Path) -> None:
    """Move the checked files into ``out``: the folder itself when new (one rename), else file by file."""
    if not out.exists():
        os.replace(staging, out)
        return
    for path in staging.iterdir():
        os.replace(path, out / path.name)


class _PortablePooling(TorchFunctionMode):
    """``F.adaptive_max_pool2d`` computed by :func:`adaptive_max_pool2d` while ``torch.export`` traces for ONNX.

    The traced graph then holds its gather and max, which the ONNX exporter translates directly: one tracing
    pass, where decomposing the operator out of a traced graph would trace the whole model again (an InsVP
    export 20 % faster).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.adaptive_max_pool2d or func is F.adaptive_max_pool2d_with_indices:
            x, size = args[0], kwargs.get("output_size", args[1] if len(args) > 1 else None)
            values, indices = adaptive_max_pool2d(x, _pair(size))
            indexed = func is F.adaptive_max_pool2d_with_indices or kwargs.get("return_indices", False)
            return (values, indices) if indexed else values
        return func(*args, **kwargs)
