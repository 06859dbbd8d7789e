"""Bias tuning (BitFit): every bias term of the backbone and the head train.

Ben Zaken et al., "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked
Language-models" (ACL 2022); the "Bias" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022).
"""
