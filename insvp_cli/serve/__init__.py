"""``insvp serve``: many adapted tasks (InsVP, ACM MM 2024, and every comparison method) behind one HTTP API.

Checkpoints whose frozen backbone is the same share it in memory, so each task adds only its trainable weights
(:mod:`.tasks`); concurrent requests to a task are batched in one model worker thread (:mod:`.batching`); the
FastAPI application (:mod:`.app`) serves the API, its OpenAPI schema and a page to try the tasks (``page/``).
Only :mod:`.settings` is imported before the command has checked its input, and it imports no torch.
"""
