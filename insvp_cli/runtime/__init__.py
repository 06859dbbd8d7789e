"""Where and how the arithmetic runs: devices (:mod:`.devices`), autocast precision (:mod:`.precision`) and the
``torchrun`` process group (:mod:`.distributed`).
"""
