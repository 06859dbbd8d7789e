"""Bottleneck adapters in every transformer block (Houlsby et al., "Parameter-Efficient Transfer Learning
for NLP", ICML 2019).

Each adapter maps a sub-layer's output ``h`` to ``h + up(act(down(h)))`` with ``down: d -> d / r`` and
``up: d / r -> d``, before the residual addition. Two placements:

- ``pfeiffer`` (default): one adapter after the MLP of each block (Pfeiffer et al., "AdapterFusion",
  EACL 2021). This is the "Adapter" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022), whose
  numbers the InsVP paper compares against, with the ViT's GELU as non-linearity.
- ``houlsby``: one after the attention projection and one after the MLP, as in Houlsby et al.

Initialisation (``init``) follows the work the recipes cite, VPT's Adapter baseline (its
``src/models/vit_adapter``): both projections, weights and biases, start at zero (``zeros``). The model then
starts exactly as the backbone, and no weight of an adapter ever gets a gradient (the up-projection sees
only zeros and the down-projection sits behind zero weights): only the up-projection's bias learns, which
is what VPT's comparison trained (and why its Adapter numbers sit next to the linear probe's, e.g. SVHN
36.3 against 36.6 in the InsVP paper's Table 1). ``houlsby`` is Houlsby et al.'s near-identity init
(truncated normal, std 1e-2) and ``lora`` AdaptFormer's (Kaiming-uniform down, zero up); both start near
or at the backbone and train every weight. Adapters live under ``adapter.``; the backbone's state dict is
unchanged.
"""
