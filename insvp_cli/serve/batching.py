"""One model worker thread: every forward of every task, with the images of concurrent requests batched per task.

The event loop only queues work here and awaits a future, so it is never blocked by a model. The worker takes the
images of one task at a time: a batch is ready when it holds ``max_batch`` images or when its first image has
waited ``max_wait`` seconds (a short, bounded wait for other requests to join it); among ready batches and queued
calls (Grad-CAM), the one whose first item came first runs. One thread runs every model, so tasks that share a
backbone never run on it at the same time, and Grad-CAM's hooks on it never see another task's forward.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class _Request:
    """The images of one request, answered together once each has its probabilities."""

    future: Future
    results: list[torch.Tensor | None]
    remaining: int


@dataclass
class _Image:
    tensor: torch.Tensor  # (3, H, W)
    request: _Request
    index: int
    queued: float


@dataclass
class _Call:
    fn: Callable[[], Any]
    future: Future
    queued: float = field(default_factory=time.monotonic)


def _settle(future: Future, result: Any = None, error: BaseException | None = None) -> None:
    """Set a future's outcome unless its request was cancelled meanwhile (a client that went away)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class ModelWorker:
    """The thread that runs the models (see the module docstring).

    Args:
        run: ``run(task, images)``: the probabilities ``(B, K)`` of a batch ``(B, 3, H, W)`` of ``task``.
        max_batch: images per forward (1: every image alone, nothing merged).
        max_wait: seconds the first image of a batch may wait for more.
    """

    def __init__(self, run: Callable[[str, torch.Tensor], torch.Tensor], max_batch: int, max_wait: float):
        self._run, self.max_batch, self.max_wait = run, max_batch, max_wait
        self._queues: dict[str, deque[_Image]] = {}
        self._calls: deque[_Call] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._running = 0  # items of the batch or call being run
        self.batches = 0  # forwards run so far
        self._thread = threading.Thread(target=self._loop, name="insvp-model-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish everything queued, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    @property
    def pending(self) -> int:
        """Images and calls queued or running."""
        with self._cond:
            return self._running + self._queued()

    def predict(self, task: str, images: list[torch.Tensor]) -> Future:
        """Queue one request's images ``(3, H, W)`` of ``task``; the future gives their probabilities, in order."""
        request = _Request(Future(), [None] * len(images), len(images))
        now = time.monotonic()
        with self._cond:
            queue = self._queues.setdefault(task, deque())
            queue.extend(_Image(t, request, i, now) for i, t in enumerate(images))
            self._cond.notify()
        return request.future

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` in the worker thread, after the work queued before it; the future gives its result."""
        call = _Call(fn, Future())
        with self._cond:
            self._calls.append(call)
            self._cond.notify()
        return call.future

    # ---- the thread (every method below runs in it) ---------------------------------------------------

    def _queued(self) -> int:
        return len(self._calls) + sum(len(q) for q in self._queues.values())

    def _loop(self) -> None:
        while True:
            with self._cond:
                work = self._next()
                while work is None:
                    if self._stopping and not self._queued():
                        return
                    self._cond.wait(self._wait_time())
                    work = self._next()
                self._running = len(work[1]) if isinstance(work, tuple) else 1
            try:
                if isinstance(work, tuple):
                    self._run_batch(*work)
                else:
                    self._run_call(work)
            finally:
                with self._cond:
                    self._running = 0

    def _ready(self, queue: deque[_Image], now: float) -> bool:
        return len(queue) >= self.max_batch or now >= queue[0].queued + self.max_wait or self._stopping

    def _next(self) -> _Call | tuple[str, list[_Image]] | None:
        """The call or ``(task, images)`` batch to run now, or ``None`` while every batch may still grow."""
        now = time.monotonic()
        for queue in self._queues.values():  # the images of a request whose client went away are dropped
            while queue and queue[0].request.future.done():
                queue.popleft()
        ready = [(q[0].queued, task) for task, q in self._queues.items() if q and self._ready(q, now)]
        first_call = self._calls[0].queued if self._calls else None
        if not ready and first_call is None:
            return None
        if not ready or (first_call is not None and first_call < min(ready)[0]):
            return self._calls.popleft()
        task = min(ready)[1]
        queue = self._queues[task]
        return task, [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]

    def _wait_time(self) -> float | None:
        """Seconds until the first waiting batch is due; ``None`` (until notified) when nothing waits."""
        heads = [q[0].queued for q in self._queues.values() if q]
        return max(0.0, min(heads) + self.max_wait - time.monotonic()) if heads else None

    def _run_call(self, call: _Call) -> None:
        try:
            result = call.fn()
        except Exception as exc:
            _settle(call.future, error=exc)
        else:
            _settle(call.future, result)

    def _run_batch(self, task: str, images: list[_Image]) -> None:
        try:
            probabilities = self._run(task, torch.stack([image.tensor for image in images]))  # (B, K)
        except Exception as exc:
            for request in {id(image.request): image.request for image in images}.values():
                _settle(request.future, error=exc)
            return
        finally:
            self.batches += 1
        for image, row in zip(images, probabilities, strict=True):
            request = image.request
            request.results[image.index] = row
            request.remaining -= 1
            if request.remaining == 0:
                _settle(request.future, request.results)
