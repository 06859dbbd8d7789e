"""Gated prompt tuning (Yoo et al., "Improving Visual Prompt Tuning for Self-supervised Vision Transformers",
ICML 2023).

VPT-shallow prompts (``num_tokens`` tokens after the class token, entering the first block and travelling
through all of them) whose update by each block is gated: after block ``j`` the prompt positions hold
``g_j * out + (1 - g_j) * in`` with a learnable ``g_j = sigmoid(a_j)``, so the prompts learn which blocks may
steer them. Each block also gets a learnable attention temperature (its "adaptive attention shaping": the
attention logits are divided by ``t_j``). As in the paper's code (``src/models/vit_prompt/vit_moco.py``, run
by ``run.sh``): gates on every block but the last (whose prompt outputs are dropped), logits initialised to
``-gate_init``, temperatures to 1 and clamped to [0.01, 10] in place (the parameter's data, at every training
forward pass: a temperature stepped past a bound returns to it and keeps its gradient), tokens xavier-uniform
over ``3 * patch^2 + D`` fans with dropout 0.1, class-token pooling, VPT's MLP head (``head_init: vpt``: the
code is built on VPT's); ``num_tokens`` 100 and ``gate_init`` 5 are the README's example (CUB). The paper
tunes both per dataset. Parameters: ``P D + 2 N - 1`` for ``N`` blocks.
"""
