"""Where InsVP's training time goes: forward and backward of each component, against prompts only.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Two tables, measured side by side
in one run on the same backbone, batch and random data:

1. The prompters' convolutions (``G_g``'s and ``G_s``'s of both presets) at their input sizes, direct
   (``conv2d``) against FFT (``insvp_cli.methods.insvp.fftconv``), forward and backward: the measurement behind
   ``conv_impl: auto``; then the frozen patch embedding's gradient to the image, ``conv2d``'s backward against
   the one matrix product that runs on CPU (``insvp_cli.backbone.patch_embed``).
2. One training step of InsVP (``paper``, and ``release`` with ``G_s`` once per forward) and of prompts only
   (the common prompt alone, VPT-deep-like, at the same ``L_p``), cut into its parts: SimAM, ``G_l``, ``G_g``,
   ``G_s``, the feature prompts and the backbone (the prompted image through the frozen ViT with its prompts, down
   to the input pixels for InsVP, down to the first block's prompts for prompts only) and the head with the loss.
   Each part's forward is timed on its own, then its backward with the gradient its output receives in the full
   step; their sum is checked against the whole step timed as one.

Every time is the median of ``--repeats`` runs after one warm-up, on ``--threads`` threads (default 1, as
``throughput.py``), under ``--precision``'s autocast (``bf16``: as training runs on CUDA) with the backends ``insvp
train`` sets. Run from the repository root::

    python benchmarks/profile_insvp.py                        # CPU: ViT-S/16, 224 px, batch 4
    python benchmarks/profile_insvp.py --device cuda --batch 64 --backbone vit_base_patch16_224 --precision bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from _models import ONLY_COMMON, build_method, method_config
from torch import nn

from insvp_cli.methods.insvp.fftconv import PromptConv2d
from insvp_cli.methods.insvp.layers import simam
from insvp_cli.runtime.backends import run_backends
from insvp_cli.runtime.precision import Precision

# (row, overrides): InsVP's presets and prompts only with the same L_p; G_s once per forward in both presets
MODELS = (
    ("insvp-paper", ("method.preset=paper",)),
    ("prompts-only L_p 9", ("method.preset=paper", *ONLY_COMMON)),
    ("insvp-release", ("method.preset=release", "method.specific_per_block=false")),
    ("prompts-only L_p 16", ("method.preset=release", *ONLY_COMMON)),
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_backward(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], grad: torch.Tensor | None,
                     device: torch.device, repeats: int, params: list[torch.Tensor] = ()) -> tuple[float, float]:
    """Seconds of ``fn(*inputs)`` forward and of its backward to the inputs that require grad and ``params``, with
    ``grad`` as the output's gradient (``None``: the output is a scalar loss)."""
    wrt = [t for t in inputs if t.requires_grad] + [p for p in params if p.requires_grad]

    def backward() -> None:
        torch.autograd.grad(fn(*inputs), wrt, grad, allow_unused=True)

    fwd = timed(lambda: fn(*inputs), device, repeats)
    return fwd, max(0.0, timed(backward, device, repeats) - fwd)


# --------------------------------------------------------------------------------------------------
# 1. the convolutions


def conv_table(opts: argparse.Namespace, device: torch.device) -> list[str]:
    """Forward + backward seconds of each prompter convolution: ``conv2d`` as given (NCHW), ``conv2d`` on
    channels-last tensors, the same with the input's gradient by kernel columns (``cols``; as ``ch-last`` where the
    input needs no gradient), and the FFT; the last column is what ``conv_impl: auto`` runs."""
    size, b = opts.img_size, opts.batch
    mid = 52 * size // 224  # G_s's second convolution runs on the 52x52 pooled map at 224 px
    # (layer, in, out, kernel, dilation, side, whether the input needs a gradient in training)
    layers = [("paper G_g conv1 5x5 d2", 3, 6, 5, 2, size, False), ("paper G_g conv2 5x5 d4", 6, 3, 5, 4, size, True),
              ("release G_g conv1 11x11", 3, 6, 11, 1, size, False),
              ("release G_g conv2 25x25", 6, 3, 25, 1, size, True),
              ("paper G_s conv1 7x7", 3, 9, 7, 1, size, False), ("paper G_s conv2 9x9", 9, 27, 9, 1, mid, True),
              ("release G_s conv1 7x7", 3, 16, 7, 1, size, True), ("release G_s conv2 9x9", 16, 48, 9, 1, mid, True),
              ("CUB G_s conv1 9x9", 3, 16, 9, 1, size, True), ("CUB G_s conv2 5x5", 16, 48, 5, 1, mid, True)]
    lines = [f"{'convolution (fwd + bwd s)':<26} {'in':>3} {'out':>3} {'px':>4} {'dx':>3} {'NCHW':>7} "
             f"{'ch-last':>7} {'cols':>7} {'fft':>7} {'auto':>13} {'auto speed-up':>13}", "-" * 106]
    for name, cin, cout, k, d, side, grad_in in layers:
        x = torch.randn(b, cin, side, side, device=device, requires_grad=grad_in)
        conv = PromptConv2d(cin, cout, k, padding=d * (k // 2), dilation=d).to(device)
        grad = torch.randn(b, cout, side, side, device=device)
        params = list(conv.parameters())
        times = {}
        for impl, fn in (("NCHW", conv.direct), ("ch-last", conv.channels_last), ("cols", conv.columns),
                         ("fft", conv.fft), ("auto", conv)):
            if impl == "cols" and not grad_in:  # without dx the same computation as ch-last: not timed twice
                times[impl] = times["ch-last"]
                continue
            times[impl] = sum(forward_backward(fn, [x], grad, device, opts.repeats, params))
        auto = conv.choice(device, grad_in)
        lines.append(f"{name:<26} {cin:>3} {cout:>3} {side:>4} {'yes' if grad_in else 'no':>3} {times['NCHW']:>7.4f} "
                     f"{times['ch-last']:>7.4f} {times['cols']:>7.4f} {times['fft']:>7.4f} {auto:>13} "
                     f"{times['NCHW'] / times['auto']:>12.2f}x")
    return lines


def patch_embedding_line(model, opts: argparse.Namespace, device: torch.device) -> str:
    """Forward + backward seconds of the frozen patch embedding with the gradient to the image, as ``conv2d``'s own
    backward against one matrix product (:class:`insvp_cli.backbone.patch_embed.PatchConv2d`, what runs on CPU)."""
    proj = model.backbone.patch_embed.proj
    x = torch.randn(opts.batch, 3, opts.img_size, opts.img_size, device=device, requires_grad=True)
    grad = torch.randn_like(proj(x))
    plain = sum(forward_backward(lambda t: nn.Conv2d.forward(proj, t), [x], grad, device, opts.repeats))
    used = sum(forward_backward(proj, [x], grad, device, opts.repeats))
    k = "x".join(map(str, proj.kernel_size))
    return (f"patch embedding {k} (frozen), forward + gradient to the image: conv2d {plain:.4f} s, as it runs here "
            f"({type(proj).__name__}) {used:.4f} s ({plain / used:.2f}x)")


# --------------------------------------------------------------------------------------------------
# 2. one training step, part by part


def step_parts(model, x: torch.Tensor, y: torch.Tensor, device: torch.device, repeats: int) -> dict[str, tuple]:
    """Forward and backward seconds of each part of one training step of ``model`` (an InsVP), each part's backward
    with the gradient its output gets in the whole step."""
    cfg, parts = model.cfg, model.insvp
    image = simam(x) if cfg.simam else x  # SimAM has no parameters: nothing flows back to the pixels
    prompters = {name: module for name, module in (("G_g", parts.global_prompter), ("G_l", parts.patch_prompter))
                 if module is not None}
    weights = {"G_g": cfg.global_weight, "G_l": cfg.patch_weight}
    outputs = {name: module(image) for name, module in prompters.items()}
    prompt = sum(weights[k] * v for k, v in outputs.items()) if outputs else None
    # the prompted image, a leaf: its gradient is what the prompters receive
    prompted = (image + prompt).detach().requires_grad_() if prompt is not None else image
    source = prompted if cfg.specific_input == "prompted" else image
    p_s = parts.specific_prompter(source).detach().requires_grad_() if parts.specific_prompter is not None else None
    head = [p for p in model.head.parameters()]

    def fused(*p_s_leaf: torch.Tensor) -> torch.Tensor:  # (B, N_F * L_p, D): every block's p_F, side by side
        return torch.cat(model.feature_prompts(p_s_leaf[0] if p_s_leaf else None, x.shape[0]), dim=1)

    p_s_inputs = [p_s] if p_s is not None else []
    feature = fused(*p_s_inputs).detach().requires_grad_()
    blocks = len(model.feature_prompts(p_s, x.shape[0]))

    def backbone(img: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        feats = model.features.forward_features(model.backbone, img, list(prompts.chunk(blocks, dim=1)))
        return F.cross_entropy(model.head(feats), y)

    g_feature, *g_image = torch.autograd.grad(backbone(prompted, feature),
                                              [feature, *([prompted] if prompted.requires_grad else [])])
    g_prompted = g_image[0] if g_image else None
    times: dict[str, tuple] = {
        "backbone + head + loss": forward_backward(backbone, [prompted, feature], None, device, repeats, head),
        "feature prompts (p_c, fusion)": forward_backward(fused, p_s_inputs, g_feature, device, repeats,
                                                          list(parts.common_per_stage())),
    }
    if p_s is not None:
        (g_p_s,) = torch.autograd.grad(fused(p_s), p_s, g_feature)
        times["G_s"] = forward_backward(parts.specific_prompter, [source], g_p_s, device, repeats,
                                        list(parts.specific_prompter.parameters()))
    for name, module in prompters.items():
        times[name] = forward_backward(module, [image], weights[name] * g_prompted, device, repeats,
                                       list(module.parameters()))
    if cfg.simam:
        times["SimAM"] = (timed(lambda: simam(x), device, repeats), 0.0)

    def whole() -> None:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    times["whole step (timed as one)"] = (timed(whole, device, repeats), 0.0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="vit_small_patch16_224")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-convs", action="store_true", help="only the step table")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast (fp32)")
    opts = parser.parse_args(argv)
    device = torch.device(opts.device)
    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    print(f"{opts.backbone} @ {opts.img_size} px, batch {opts.batch}, {device}, {opts.precision}, {opts.threads} "
          f"thread(s), median of {opts.repeats}; torch {torch.__version__}")
    with run_backends(device, tf32=True, deterministic=False), Precision.resolve(opts.precision, device).autocast():
        measure(opts, device)
    return 0


def measure(opts: argparse.Namespace, device: torch.device) -> None:
    """Both tables, printed."""
    if not opts.skip_convs:
        print()
        print("\n".join(conv_table(opts, device)))
    x = torch.randn(opts.batch, 3, opts.img_size, opts.img_size, device=device)
    y = torch.randint(0, 10, (opts.batch,), device=device)
    for name, overrides in MODELS:
        cfg = method_config(opts.backbone, *overrides, "method.dropout=0", f"backbone.img_size={opts.img_size}")
        model = build_method(cfg, num_classes=10).to(device).train()
        if name == MODELS[0][0] and not opts.skip_convs:
            print(patch_embedding_line(model, opts, device))
        times = step_parts(model, x, y, device, opts.repeats)
        whole = times.pop("whole step (timed as one)")[0]
        total = sum(f + b for f, b in times.values())
        print()
        print(f"{name} (L_p {cfg.method.prompt_len}): whole step {whole:.3f} s, parts {total:.3f} s, "
              f"{opts.batch / whole:.2f} images/s")
        print(f"  {'part':<30} {'forward s':>9} {'backward s':>10} {'share':>6}")
        for part, (fwd, bwd) in sorted(times.items(), key=lambda kv: -sum(kv[1])):
            print(f"  {part:<30} {fwd:>9.4f} {bwd:>10.4f} {(fwd + bwd) / total:>6.1%}")


if __name__ == "__main__":
    sys.exit(main())
