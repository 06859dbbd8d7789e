"""MLP-k head: a ``k``-layer perceptron replaces the linear head on the frozen backbone's features.

The "Mlp-k" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022, §4.1). As in the VPT code,
each hidden layer is Linear -> ReLU -> BatchNorm1d -> Dropout with Kaiming-normal (fan-out) weights,
and the last layer (the method's ``head``) is VPT's too: Kaiming-normal fan-out weights and a bias of
``-log(99)`` (``head_init: vpt``). A training batch of one image, which BatchNorm cannot normalise, never
reaches the model: the training loader drops a last batch of one.
"""
