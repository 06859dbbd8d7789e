"""Side-tuning (Zhang et al., "Side-Tuning: A Baseline for Network Adaptation via Additive Side Networks",
ECCV 2020), as Jia et al.'s "Visual Prompt Tuning" (ECCV 2022) compared it: the "Sidetune" row of the InsVP
paper's Tables 1 and 2.

VPT's variant (its ``src/models/vit_models.py``, transfer type ``side``): the frozen ViT's pooled features
``f`` are blended with those of a small trainable side network ``s``, an ImageNet-pretrained AlexNet's
convolutional features and adaptive average pooling (256 x 6 x 6 = 9,216 values) projected to the ViT's
width by a linear layer without bias::

    a = sigmoid(alpha),  alpha = 0 at the start (a = 0.5)
    features = a * f + (1 - a) * W s

The whole side network, the projection, ``alpha`` and the head train (9,547,585 parameters besides the
head on ViT-B/16). VPT feeds AlexNet the same 224 px image as the ViT, normalised with ImageNet's mean and
std for both; here the image arrives in the backbone's normalisation, so the side network re-normalises it
to ImageNet's (what its pretrained weights expect) and resizes it to ``side_image_size`` (224 by default,
where AlexNet's feature map is 13 x 13; at 224 px input this is a no-op). The head is VPT's MLP head
(``head_init: vpt``), as for every method of VPT's comparison.

The pretrained side weights (``side_weights``) are loaded when a run starts (the ``prepare`` hook), so
building the model (``insvp params``) never downloads; checkpoints then carry the trained side network.
"""
