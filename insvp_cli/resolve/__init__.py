"""Configs made from the outside world, in one place: recipes and ``--set`` layered into a new run's config
(:mod:`.layers`), what a method needs from the data (:mod:`.needs`), and a stored config read back as it is
(:mod:`.stored`). No torch.
"""
