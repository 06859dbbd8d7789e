"""Reproducing the paper's tables (InsVP, ACM MM 2024): the runs of each table and its published numbers.

- :mod:`.paper_tables`: the published numbers of Tables 1-5 and Fig. 7, as printed.
- :mod:`.tables`: each table as data, cells -> runs (recipe, overrides, run folder); the registry ``TABLES``.
- :mod:`.runner`: ``insvp reproduce``: plan the runs, list them (``--dry-run``), train what is missing.
- :mod:`.report`: ``insvp report``: finished runs beside the published numbers.
"""
