"""Bottleneck adapters in every transformer block (Houlsby et al., "Parameter-Efficient Transfer Learning
for NLP", ICML 2019).

Each adapter maps a sub-layer's output ``h`` to ``h + up(act(down(h)))`` with ``down: d -> d / r`` and
``up: d / r -> d``, before the residual addition. Two placements:

- ``pfeiffer`` (default): one adapter after the MLP of each block (Pfeiffer et al., "AdapterFusion",
  EACL 2021). This is the "Adapter" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022), whose
  numbers the InsVP paper compares against, with the ViT's GELU as non-linearity.
- ``houlsby``: one after the attention projection and one after the MLP, as in Houlsby et al.

The up-projection starts at zero (the paper's near-identity initialisation taken to its limit), so the
model starts exactly as the backbone. Adapters live under ``adapter.``; the backbone's state dict is
unchanged.
"""
