"""The bottom layer: errors, atomic file writes, registries and text tables. Imports nothing of the package and
no torch.
"""
