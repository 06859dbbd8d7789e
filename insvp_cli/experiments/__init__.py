"""Experiments over many runs: the run queue (:mod:`.queue`), ``insvp compare``, ``insvp quickstart``, parameter
counts of every method, ``insvp sweep`` and ``insvp reproduce``.
"""
