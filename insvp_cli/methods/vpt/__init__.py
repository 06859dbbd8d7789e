"""Visual prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022).

``num_tokens`` learnable tokens are inserted after the class token. ``deep: false`` (VPT-shallow):
one set before the first block, whose outputs then travel through every block. ``deep: true``
(VPT-deep): a new set before every block, replacing the previous block's prompt outputs. The prompt
outputs are dropped before the final norm, so the class token alone feeds the head. Tokens are
initialised xavier-uniform over ``3 * patch^2 + D`` fans as in the paper's code, with dropout 0.1 on them.
"""
