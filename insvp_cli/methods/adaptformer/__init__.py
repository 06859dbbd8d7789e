"""AdaptFormer: a scaled bottleneck in parallel with the MLP of every block (Chen et al., "AdaptFormer:
Adapting Vision Transformers for Scalable Visual Recognition", NeurIPS 2022).

With ``x'`` the block's stream after the attention residual, the paper's AdaptMLP (§3.2) is::

    x~ = ReLU(LN(x') W_down) W_up
    x  = MLP(LN(x')) + s * x~ + x'

where ``LN`` is the block's own (frozen) MLP norm. The authors' code feeds the bottleneck ``x'`` without
the norm (``ffn_adapter_layernorm_option="none"``); ``adapter_input: residual``, the default, reproduces that,
and ``adapter_input: norm`` gives the paper's formula. Both use bottleneck 64, ``s = 0.1``, dropout 0.1 on the
bottleneck and a zero-initialised up-projection, so the model starts exactly as the backbone.
"""
