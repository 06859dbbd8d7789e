"""Visual prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022).

``num_tokens`` learnable tokens are inserted after the class token. ``deep: false`` (VPT-shallow):
one set before the first block, whose outputs then travel through every block. ``deep: true``
(VPT-deep): a new set before every block, replacing the previous block's prompt outputs. The prompt
outputs are dropped before the final norm, so the class token alone feeds the head. Tokens are
initialised xavier-uniform over ``3 * patch^2 + D`` fans as in the paper's code, with dropout 0.1 on them
(drawn per image).

The prompts go through the backbone's feature-prompting strategy (:mod:`insvp_cli.backbone.prompting`), the
same as InsVP's, so VPT also runs on a Swin Transformer with VPT's own Swin scheme: one token width per
stage, the same prompts prepended to every window, new prompts before every block (deep) or prompts
before the first block that travel on through the windows and patch merging (shallow).

VPT's official code differs from these defaults in training only: prompt dropout 0.0 in its default config,
weight decay on the prompts (``prompt_weight_decay: true``), and VPT's MLP head init for every method of its
comparison (``head_init: vpt``). The runs of ``insvp reproduce`` that stand for VPT's numbers use those.
"""
