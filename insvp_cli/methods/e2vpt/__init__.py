"""E2VPT: effective and efficient visual prompt tuning (Han et al., "E^2VPT: An Effective and Efficient
Approach for Visual Prompt Tuning", ICCV 2023), the "E2VPT" row of the InsVP paper's Tables 1 to 4.

Two kinds of prompts on a frozen ViT:

- visual prompts: ``visual_tokens`` learnable tokens after the class token, VPT-style, a new set before
  every block (``deep``) or before the first only, xavier-uniform as VPT, with dropout;
- key-value prompts: in every block's self-attention, ``kv_tokens`` learnable vectors per head are
  concatenated to the keys and to the values (one tensor serves both with ``share_kv``), after the
  key/value projections; queries stay the tokens', so the prompts only change what every token attends to.

Pruning (optional, ``prune``): at epoch ``prune_epoch`` the importance of every visual prompt token and of
each of its ``segments`` equal pieces is measured as the mean absolute gradient of the loss with respect to
a 0/1 mask on it (E2VPT §3.3, after Michel et al.), over the training split; the least important tokens
(``prune_tokens`` of them) are masked, then every remaining token masks its own least important segments, the
same number in every token (``int(segments * prune_segments)``, at most ``segments - min_segments``), as E2VPT's
trainer does. The masks stay for good. Then every trainable tensor is rewound to its initialisation (E2VPT's
rewinding: its code retrains a fresh model with the masks) and training starts over: the engine restarts the
optimizer and the learning-rate schedule at that epoch (``restart_epochs``), and the model is selected among
the epochs after it. E2VPT's two full runs are ``train.epochs: 200`` with ``prune_epoch: 100``.

Defaults and where they come from: the token counts per dataset are those of E2VPT's published commands
(``command.txt``, its "Documented Version" sections): 5 visual and 5 key-value tokens on every FGVC set, per
task on VTAB-1k (:data:`~insvp_cli.methods.e2vpt.config.VTAB_TOKENS`, e.g. caltech101 32 / 5, oxford_flowers102
1 / 1); they apply when the run's ``data`` names such a dataset, under any recipe or ``--set`` value
(:meth:`~insvp_cli.methods.e2vpt.config.E2VPTConfig.dataset_defaults`); elsewhere ``visual_tokens`` 10 and
``kv_tokens`` 5. Visual dropout 0.1 is its commands' too; ``share_kv``, key-value placement before the tokens'
keys, Kaiming-uniform key-value init (fan-in ``kv_tokens x head_dim``) and key-value dropout 0 are its code's
defaults (``src/configs/config.py``); the 16 segments per token and at least 1 kept token / 4 kept segments
are its code's defaults too, and the head is VPT's MLP head (``head_init: vpt``: its code is built on VPT's).
Where ours differs from E2VPT's code: the masks are fixed 0/1 buffers (its code makes them trainable
parameters that start at 1); importance is the paper's mean *absolute* gradient, where its trainer averages
the signed gradients of the token mask and of the segment mask (each segment scored by its own mask's
gradient) and divides each token's segment scores by their L2 norm; segments are contiguous pieces of the
token, where its code tiles the ``(P, R)`` segment mask across the width with ``repeat``, so its segment
``r`` is every ``R``-th channel from ``r``; and ``prune_tokens`` / ``prune_segments`` are fixed fractions
where E2VPT searches 10 % to 90 % on the validation split.
"""
