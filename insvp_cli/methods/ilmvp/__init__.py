"""ILM-VP: iterative label mapping visual prompting (Chen et al., "Understanding and Improving Visual Prompting:
A Label-Mapping Perspective", CVPR 2023).

The frozen source model keeps its pretrained classifier. Each image is shrunk into the centre of the input
canvas and a learnable frame is added around it (the code's ``ExpansiveVisualPrompt``: ``sigmoid(delta)``
in pixel space, zero-initialised, ``3 H W`` parameters); each target class reads the logit of one source
class, chosen by frequency: before every epoch the prompted training split goes through the model and the
greedy one-to-one assignment of the most frequent (source prediction, target label) pairs becomes the
mapping (``--mapping-interval 1``). There is no trained head. Defaults from the paper's code
(``experiments/cnn/ilm_vp.py``): one source class per target, remapping every epoch, the image at 128 px of
the 224 px canvas (the code's size for its larger datasets; 32 px datasets there are padded at 32 px).
Shared machinery and the stand-in label space of headless backbones: :mod:`insvp_cli.methods.label_mapping`.
"""
