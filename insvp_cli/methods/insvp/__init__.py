"""InsVP: instance visual prompting (Liu et al., "InsVP: Efficient Instance Visual Prompting from Image
Itself", ACM MM 2024), with the paper's design (``preset: paper``) and the authors' code release
(``preset: release``) as faithful presets.
"""

from .. import register_method
from .config import InsVPConfig
from .model import InsVP

register_method("insvp", InsVPConfig, InsVP)

__all__ = ["InsVP", "InsVPConfig"]
