"""AutoVP: automated visual prompting (Tsao et al., "AutoVP: An Automated Visual Prompting Framework and
Benchmark", ICLR 2024).

AutoVP's design space, on the frozen backbone of the run: input scaling (the image shrunk to
``image_fraction`` of the canvas: its ``img_scale`` times the code's 128 px base), a visual prompt (the
learnable frame around it, ``sigmoid(delta)`` in pixel space as in its ``InputPadding``) and an output label
mapping from the source model's classes to the target classes: ``fully_connected`` (its FullyMap, a linear
layer on the source logits, trained as the head), or ``frequency`` (its FreqMap with ``remap_every: null``,
computed once from the training split before the first epoch, or IterMap with ``remap_every: N``), with
``per_class`` source classes per target whose logits are averaged. Defaults from its ``demo.py``:
``fully_connected``, ``img_scale`` 1.5 (192 of 224 px), ``out_map_num`` 5, ``freqmap_interval`` -1 (once).

Not offered: SemanticMap (needs CLIP's text encoder and its weights, not available offline), the random
"self-defined" mapping, and the trainable-resize module (off in AutoVP's defaults); AutoVP's search over
these choices is a search over config values here. Shared machinery and the stand-in label space of
headless backbones: :mod:`insvp_cli.methods.label_mapping`.
"""
