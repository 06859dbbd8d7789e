"""The configuration schema: typed dataclasses that validate themselves (:mod:`.schema`), the coercion that builds
them from plain data (:mod:`.coerce`), training protocols (:mod:`.protocols`) and dotted override keys
(:mod:`.overrides`). No torch, no methods.
"""
