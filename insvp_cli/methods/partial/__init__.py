"""Partial fine-tuning (partial-k): the last ``k`` blocks, the final norm and the head train.

As the "Partial-k" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022, §4.1), after Yosinski et
al., "How transferable are features in deep neural networks?" (NeurIPS 2014).
"""
