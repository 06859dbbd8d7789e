"""Visual prompting with a padding prompt (Bahng et al., "Exploring Visual Prompts for Adapting
Large-Scale Models", arXiv 2203.17274, 2022).

A learnable frame of width ``p`` around the image border is added to every (normalised) input image;
the centre stays untouched. Four tensors make the frame: top and bottom ``(3, p, W)``, left and right
``(3, H - 2p, p)``, initialised from a standard normal as in the paper's code. At 224 px with ``p = 30``
that is 69,840 parameters.
"""
