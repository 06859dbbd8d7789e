"""Figures of InsVP (ACM MM 2024): Grad-CAM and image prompts (Figs. 3, 4), t-SNE of features and of the
specific prompt (Figs. 6, 8), and extra parameters against accuracy (Fig. 5).

Every module computes plain numpy arrays first and draws them second, so the numbers are testable
without looking at pictures. Drawing uses :class:`matplotlib.figure.Figure` directly and never imports
``pyplot``: such figures render with the Agg canvas and never open a window, so the commands work the
same on a headless server, in CI and on a laptop.
"""
