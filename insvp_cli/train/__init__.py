"""Training: the engine's plain functions (:mod:`.engine`), one run from config to summary (:mod:`.loop`), its
loggers and progress display, and ``insvp train``'s new-or-resumed decision (:mod:`.new_or_resume`).
"""
