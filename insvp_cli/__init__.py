"""insvp: InsVP (instance visual prompting, ACM MM 2024) and its comparison methods on frozen timm ViTs."""

__version__ = "0.1.0"
