"""MLP-k head: a ``k``-layer perceptron replaces the linear head on the frozen backbone's features.

The "Mlp-k" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022, §4.1). As in the VPT code,
each hidden layer is Linear -> ReLU -> BatchNorm1d -> Dropout with Kaiming-normal (fan-out) weights.
"""
