"""LION: implicit vision prompt tuning (Wang et al., "LION: Implicit Vision Prompt Tuning", AAAI 2024).

Two equilibrium (implicit) layers on the ends of the frozen backbone: one in front of its input, whose fixed
point gives an image prompt added to the image, and one behind its output, whose fixed point enriches the
pooled representation before the head. Its robust training prunes the implicit layers by magnitude
(lottery-ticket style): weights below a threshold are pulled to zero by a strong extra penalty.

The authors' code is not public; the layer sizes and solver settings below are ours, stated here so that
they can be changed and compared. Each implicit layer solves ``z = tanh(s W z + U x)`` (``U`` with a bias): fixed-point
iterations without gradients from ``z = 0`` until the relative change falls below ``tol`` (at most
``max_iter``), then one differentiable step, whose gradient is the Jacobian-free approximation of the
implicit one (Fung et al., AAAI 2022), so memory does not grow with the iterations. ``s = contraction /
max(1, sqrt(k) ||W||_F)`` bounds the step's Lipschitz constant by ``contraction`` (``sqrt(k) ||W||_F`` bounds
the norm of a linear map or of a convolution with ``k`` kernel taps; ``tanh`` is 1-Lipschitz), so the fixed
point exists, is unique and is reached. The input layer works on the image with 3x3 convolutions
(``image_channels`` channels) and a 1x1 convolution back to RGB; the output layer works on the pooled
features (``feature_width`` units) with a linear map back to ``D`` added to them. Both read-outs start at
zero, so training starts from the backbone and its linear probe. Parameters besides the head:
``(9 c^2 + 31 c + 3) + (2 D r + r^2 + r + D)`` for ``c = image_channels``, ``r = feature_width``.
"""
