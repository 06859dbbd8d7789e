"""InsVP: instance visual prompting (Liu et al., "InsVP: Efficient Instance Visual Prompting from Image
Itself", ACM MM 2024), with the paper's design (``preset: paper``) and the authors' code release
(``preset: release``) as faithful presets.
"""
