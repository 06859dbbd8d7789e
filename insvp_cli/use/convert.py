"""Import a model trained with the authors' InsVP release (Liu et al., "InsVP: Efficient Instance Visual
Prompting from Image Itself", ACM MM 2024) as an insvp checkpoint.

The release saves ``model.state_dict()`` of its whole model as ``best_model.pth``: the timm ViT-B/16
under ``backbone.`` (its ``head`` is the classifier that trained), the common prompt ``prompts`` and
three prompters. :data:`RELEASE_TO_OURS` maps their names to ours; the shapes alone tell the prompters
apart, which is why the table can be checked and is easy to correct:

============================  =====================================  ==================================
release key                   insvp key                              release shape (ViT-B/16, 224 px)
============================  =====================================  ==================================
``prompts``                   ``insvp.common_prompt``                ``p_c``: (N_F, L_p, 768)
``meta_net.0.*``              ``insvp.patch_prompter.fc1.*``         ``G_l`` Linear: (16, 3*16*16)
``meta_net.2.*``              ``insvp.patch_prompter.fc2.*``         ``G_l`` Linear: (3*16*16, 16)
``meta_net_2.0.*``            ``insvp.global_prompter.conv1.*``      ``G_g`` Conv2d: (6, 3, 11, 11)
``meta_net_2.2.*``            ``insvp.global_prompter.conv2.*``      ``G_g`` Conv2d: (3, 6, 25, 25)
``TokenPrompt.conv1.*``       ``insvp.specific_prompter.conv1.*``    ``G_s`` Conv2d: (L_p, 3, k1, k1)
``TokenPrompt.conv2.*``       ``insvp.specific_prompter.conv2.*``    ``G_s`` Conv2d: (3 L_p, L_p, k2, k2)
``TokenPrompt.conv3.*``       ``insvp.specific_prompter.conv3.*``    ``G_s`` Conv2d: (3 L_p, 3 L_p, k3, k3)
``backbone.head.*``           ``head.*``                             classifier: (K, 768)
``backbone.*`` (the rest)     the frozen backbone                    timm ``vit_base_patch16_224``
============================  =====================================  ==================================

(The numeric indices are positions in ``nn.Sequential``: 1 is the ReLU between the two layers.)

Our checkpoints hold trainable tensors only and rebuild the backbone from ``backbone.weights``, so
the converter also writes the release's backbone to ``DIR/backbone.safetensors`` and points the
converted config at it. What the state dict cannot say comes from the recipe: SimAM (parameter-free)
and the dataset. The class names are unknown, so the checkpoint lists the class indices ``"0"`` ...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..backbone.weights import read_state_dict
from ..common.atomic import atomic_save_safetensors
from ..common.errors import UsageError
from ..config.schema import Config
from ..resolve.layers import resolve_config
from ..runs.checkpoint import Checkpoint
from ..runs.folder import RunFolder

# Release name (prefix, or a whole name) -> our name. See the module docstring for the shapes.
RELEASE_TO_OURS: dict[str, str] = {
    "prompts": "insvp.common_prompt",
    "meta_net.0.": "insvp.patch_prompter.fc1.",
    "meta_net.2.": "insvp.patch_prompter.fc2.",
    "meta_net_2.0.": "insvp.global_prompter.conv1.",
    "meta_net_2.2.": "insvp.global_prompter.conv2.",
    "TokenPrompt.conv1.": "insvp.specific_prompter.conv1.",
    "TokenPrompt.conv2.": "insvp.specific_prompter.conv2.",
    "TokenPrompt.conv3.": "insvp.specific_prompter.conv3.",
    "backbone.head.": "head.",
}
BACKBONE_PREFIX = "backbone."


def rename(name: str, table: dict[str, str]) -> str | None:
    """``name`` through a prefix table (a key ending in ``.`` is a prefix, any other a whole name); None if absent."""
    for old, new in table.items():
        if name == old or (old.endswith(".") and name.startswith(old)):
            return new + name[len(old) :]
    return None


def ours_to_release(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse mapping: our trainable tensors under the release's names (tests and exports)."""
    inverse = {new: old for old, new in RELEASE_TO_OURS.items()}
    out = {}
    for key, value in state_dict.items():
        name = rename(key, inverse)
        if name is None:
            raise ValueError(f"{key} has no counterpart in the release's model")
        out[name] = value
    return out


@dataclass
class Converted:
    """What :func:`convert_official` wrote."""

    checkpoint: Path
    config: Path
    backbone: Path
    num_classes: int
    tensors: int


def read_release_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load the release's ``best_model.pth`` safely (``weights_only=True``); a DataParallel ``module.`` is dropped."""
    obj = read_state_dict(path, what="release state dict")
    if all(k.startswith("module.") for k in obj):  # saved from a DataParallel / DDP wrapper
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def split_release_state_dict(
    state_dict: dict[str, torch.Tensor],
) -> tuple[dict[str, tuple[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Release state dict -> (our trainable name -> (release name, tensor), backbone state dict without its head).

    Raises:
        UsageError: a key that belongs to no part of the release's model.
    """
    trainable, backbone = {}, {}
    for key, value in state_dict.items():
        ours = rename(key, RELEASE_TO_OURS)
        if ours is not None:
            trainable[ours] = (key, value)
        elif key.startswith(BACKBONE_PREFIX):
            backbone[key[len(BACKBONE_PREFIX) :]] = value
        else:
            raise UsageError(f"{key} is not a key of the release's model (expected backbone.*, prompts, meta_net.*, "
                             f"meta_net_2.*, TokenPrompt.conv1-3.*)")
    return trainable, backbone


def convert_official(state_dict_path: Path, recipe: Path | str, out_dir: Path,
                     overrides: list[str] | tuple[str, ...] = ()) -> Converted:
    """Convert the release's ``best_model.pth`` into ``out_dir/best.pt`` (+ ``config.yaml``, ``backbone.safetensors``).

    The recipe (plus ``--set`` overrides) must describe the release's architecture: ``method.name=insvp``,
    ``method.preset=release``, and the ``prompt_len``, ``prompt_blocks``, kernels and SimAM it trained with
    (and ``method.global_weight`` if the release run changed its weight of ``p_g`` from 2).
    ``insvp_cli.load_model(out_dir / "best.pt")`` then computes the release model's eval-mode logits.

    Raises:
        UsageError: unreadable file, a recipe for another method or preset, unknown keys, or the first
            tensor whose shape differs from the recipe's model (naming both shapes).
    """
    from ..backbone import create_backbone
    from ..methods.build import build_model

    folder = RunFolder(out_dir)
    if folder.best.exists():
        raise UsageError(f"--out {out_dir} already holds {folder.BEST}; choose another folder")
    state = read_release_state_dict(state_dict_path)
    cfg = _release_config(resolve_config(recipe, overrides))
    trainable, backbone_state = split_release_state_dict(state)
    if "head.weight" not in trainable:
        raise UsageError(f"{state_dict_path} has no classifier backbone.head.weight; "
                         f"is it the release's best_model.pth?")
    num_classes = trainable["head.weight"][1].shape[0]

    # the recipe's model with a random backbone gives the expected names and shapes of everything
    random_cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, weights="none"))
    model = build_model(random_cfg, num_classes)
    expected = {k: v.shape for k, v in model.trainable_state_dict().items()}
    expected_backbone = {k: v.shape for k, v in model.backbone.state_dict().items()}
    _check_shapes(state, trainable, backbone_state, expected, expected_backbone, recipe)

    out_dir.mkdir(parents=True, exist_ok=True)
    backbone_path = (out_dir / "backbone.safetensors").resolve()
    atomic_save_safetensors(backbone_state, backbone_path)
    cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, weights=str(backbone_path)))
    # rebuilding from the written file checks it and gives the fingerprint that load_model verifies
    model = build_model(cfg, num_classes, backbone=create_backbone(cfg.backbone))
    model.load_state_dict({ours: value for ours, (_, value) in trainable.items()}, strict=False)
    # the release stores no class names: only the count is checked
    classes = [str(i) for i in range(num_classes)]
    ckpt = Checkpoint.of(model, cfg, classes, {"converted_from": str(state_dict_path)}, epoch=0, classes_named=False)
    folder.write_config(cfg)
    ckpt.save(folder.best)
    return Converted(checkpoint=folder.best, config=folder.config_file, backbone=backbone_path,
                     num_classes=num_classes, tensors=len(state))


def _release_config(cfg: Config) -> Config:
    method = cfg.method
    preset = getattr(method, "preset", None)
    if method.name != "insvp" or preset != "release":
        given = f"method.name={method.name}" + (f", method.preset={preset}" if preset else "")
        raise UsageError(f"convert-official needs method.name=insvp and method.preset=release (the release's model); "
                         f"the recipe gives {given}")
    if method.freeze_specific_prompter:
        # our checkpoints omit frozen tensors and re-create them from the seed; the release's G_s (random, never
        # trained) is part of its model, so the converted checkpoint must store it
        cfg = dataclasses.replace(cfg, method=dataclasses.replace(method, freeze_specific_prompter=False))
    return cfg


def _check_shapes(state: dict[str, torch.Tensor], trainable: dict[str, tuple[str, torch.Tensor]],
                  backbone_state: dict[str, torch.Tensor], expected: dict[str, torch.Size],
                  expected_backbone: dict[str, torch.Size], recipe: Path | str) -> None:
    """Every release tensor, in the file's order, against the recipe's model; then the tensors the recipe lacks."""
    ours_of = {release: ours for ours, (release, _) in trainable.items()}
    for key, value in state.items():
        if key in ours_of:
            ours, shapes = ours_of[key], expected
        else:
            ours, shapes = key[len(BACKBONE_PREFIX) :], expected_backbone
        if ours not in shapes:
            raise UsageError(f"{key} (shape {tuple(value.shape)}) has no place in the model of recipe {recipe} "
                             f"({'backbone ' if shapes is expected_backbone else ''}{ours}); is a component off?")
        if value.shape != shapes[ours]:
            raise UsageError(f"{key} has shape {tuple(value.shape)} but recipe {recipe} expects "
                             f"{tuple(shapes[ours])} ({ours})")
    inverse = {new: old for old, new in RELEASE_TO_OURS.items()}
    missing = [rename(k, inverse) or k for k in expected if k not in trainable]
    missing += [BACKBONE_PREFIX + k for k in expected_backbone if k not in backbone_state]
    if missing:
        raise UsageError(f"the state dict lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} "
                         f"that recipe {recipe} needs")
