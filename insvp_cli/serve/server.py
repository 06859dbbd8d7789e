"""``insvp serve``'s core: bind the address, load the tasks, run uvicorn until SIGTERM or Ctrl-C.

The address is bound before any model is loaded, so a port in use fails at once. On SIGTERM uvicorn stops
accepting connections, answers every request in flight (up to ``drain_timeout`` seconds), then the model worker
finishes what is queued and :func:`serve` returns normally (exit status 0). Ctrl-C drains the same way and then
raises ``KeyboardInterrupt`` (exit status 130).
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..common.errors import UsageError
from .settings import ServeSettings, TaskSpec


class Terminated(Exception):
    """SIGTERM arrived (before or after uvicorn ran, whose own handler drains the requests in flight)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6), for uvicorn to serve on.

    Raises:
        UsageError: an address that does not resolve or cannot be bound (in use, not this machine's, no permission).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart right after a stop may bind again
    try:
        sock.bind(address)
        sock.listen(2048)  # clients that connect while the models load wait in the backlog
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose another "
                         f"--port (0: any free one)") from None
    return sock


@dataclass
class ServeResult:
    """What a server did before SIGTERM stopped it: ``answered`` prediction requests in ``batches`` forwards."""

    answered: int = 0
    batches: int = 0


def serve(specs: Sequence[TaskSpec], settings: ServeSettings,
          on_ready: Callable[[dict, str], None] | None = None,
          on_task: Callable[[TaskSpec, int], None] | None = None) -> ServeResult:
    """Serve ``specs`` until SIGTERM (returns) or Ctrl-C (raises ``KeyboardInterrupt`` once drained).

    Args:
        specs: the tasks.
        settings: how to serve them (already :meth:`~.settings.ServeSettings.check` ed).
        on_ready: called with the tasks and the server's URL once they are loaded, before the first request.
        on_task: called with each spec and its position before its model is loaded.

    Raises:
        UsageError: an address that cannot be bound, a bad device, checkpoint or override.
        RuntimeError: uvicorn could not start (its log says why).
    """
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        sock = bind(settings.host, settings.port)
        try:
            return _run(sock, specs, settings, on_ready, on_task)
        finally:
            sock.close()
    except Terminated:  # while the models were loading: nothing was served
        return ServeResult()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(sock: socket.socket, specs: Sequence[TaskSpec], settings: ServeSettings,
         on_ready: Callable[[dict, str], None] | None, on_task: Callable[[TaskSpec, int], None] | None) -> ServeResult:
    import uvicorn

    from .app import create_app
    from .tasks import load_tasks

    tasks = load_tasks(specs, settings.device, settings.overrides, on_task=on_task)
    app = create_app(tasks, settings)
    config = uvicorn.Config(app, lifespan="on", log_level="info" if settings.access_log else "warning",
                            access_log=settings.access_log, timeout_graceful_shutdown=settings.drain_timeout)
    server = uvicorn.Server(config)
    if on_ready is not None:
        host, port = sock.getsockname()[:2]
        on_ready(tasks, f"http://{f'[{host}]' if ':' in host else host}:{port}")
    try:
        # on SIGTERM uvicorn drains, puts our handler back and raises the signal again: Terminated
        server.run(sockets=[sock])
    except Terminated:
        return ServeResult(app.state.answered, app.state.worker.batches)
    raise RuntimeError("the server stopped without a signal: it could not start (the lines above say why)")
