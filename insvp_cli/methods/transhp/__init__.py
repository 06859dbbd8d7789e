"""TransHP: hierarchical prompting (Wang et al., "TransHP: Image Classification with Hierarchical Prompting",
NeurIPS 2023).

One prompt token per coarse class (a "prototype") joins the tokens entering one block of the frozen ViT;
through that block's attention the image tokens absorb the prompts of the coarse classes they resemble, and
the block's outputs at the prompt positions, each dotted with a learnable vector of its own, are the coarse
logits, trained against the coarse labels of a hierarchy (:mod:`insvp_cli.data.hierarchy`). The prompts are
dropped after the block; the fine head reads the class token as usual. Loss: the fine loss plus
``coarse_weight`` times the coarse cross-entropy, with the run's label smoothing on the coarse labels too (the
code smooths every level's labels); soft (Mixup) targets become coarse soft targets through the class -> coarse
matrix. As in the paper's code (``models.py``, ``losses.py``): prototypes and their vectors are initialised
trunc-normal(0.02), the coarse loss weight is 1, and the prompts enter the second-to-last block (``b >= 10`` of
12) as in its first upload (``method.revision: first``, the default: the revision our forward pass matches
exactly). Its repository now (``if b >= 0``, from 7 December 2023) prompts every block but the last, each with
the prompts of its own hierarchy level; ``method.revision: current`` does that with the one coarse level of a
two-level hierarchy: a set of prototypes and vectors per block, each giving coarse logits, the coarse loss their
mean (``2 (N - 1) K_c D`` parameters). The code's extra "background" prompt of each level (ImageNet's many-level
hierarchy, where some classes lack a level) is not needed for a two-level hierarchy, where every class has a
coarse class. TransHP trains the whole ViT; here, as for every method of the paper's Table 1, the backbone
stays frozen and only the prompts, their vectors and the head train: ``2 K_c D`` parameters besides the head.
Its timm (DeiT) optimizer decays every tensor of two or more dimensions, prototypes and vectors included, and
so does ours (timm's rule, the default).

Needs a coarse-label hierarchy from the data (``requires: hierarchy``); its number of coarse classes is
written into ``method.coarse_classes`` when a run starts, so checkpoints rebuild the model without the file.
"""
