"""``insvp data prepare``: every dataset of InsVP's benchmarks (ACM MM 2024, §4.1: the ten HTA datasets, VPT's
five FGVC datasets, the 19 VTAB-1k tasks) on disk in one command, verified, resumable and possible offline.

- :mod:`.sources`: what a dataset's files are (URLs, size, checksum and where it is published) and how they become
  the layout its reader expects; the tables are :mod:`.torchvision_sets`, :mod:`.fgvc` and :mod:`.vtab`.
- :mod:`.download`: resumable downloads with retries and backoff; :mod:`.verify`: sizes and digests;
  :mod:`.extract`: extraction that cannot write outside the dataset folder.
- :mod:`.run`: the command itself: plan, fetch or find (``--from``), verify, extract, check, rename into place.
"""
