"""``insvp serve`` as a child process, for scripts, notebooks, benchmarks and tests (InsVP, ACM MM 2024).

:class:`ServerProcess` starts the installed command on a free loopback port, returns once ``/health`` answers, and
stops it with SIGTERM (which drains the requests in flight), killing it only if it does not stop in time::

    with ServerProcess(["runs/svhn-insvp", "runs/svhn-vpt"], token="secret") as server:
        requests.get(f"{server.url}/tasks", headers=server.headers)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .settings import TOKEN_ENV

READY = re.compile(r"serving \d+ tasks? on (http://\S+) ")  # what the command prints once its tasks are loaded


def insvp_command() -> list[str]:
    """The installed ``insvp`` script beside this Python, else ``python -m insvp_cli``."""
    script = Path(sys.executable).with_name("insvp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "insvp_cli"]


class ServerProcess:
    """``insvp serve ARGS --host 127.0.0.1 --port 0`` in a child process, its output in a log file.

    Args:
        args: the checkpoints and options of ``insvp serve``.
        token: the bearer token, passed through the environment (never on the command line, which ``ps`` shows).
        log: where the server's output goes (default: a temporary file, removed when stopped).
        env: the environment (default: this process's).
        startup_timeout: seconds to wait for ``/health`` before giving up.
    """

    def __init__(self, args: Sequence[str], *, token: str | None = None, log: Path | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 180.0):
        self.args, self.token, self.startup_timeout = [str(a) for a in args], token, startup_timeout
        self.env = {**(os.environ if env is None else env), **({TOKEN_ENV: token} if token else {})}
        self._own_log = log is None
        self.log = Path(log) if log is not None else Path(tempfile.mkstemp(prefix="insvp-serve-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.returncode: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header the server wants (none without a token)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")

    def start(self) -> ServerProcess:
        """Start the server and wait until ``/health`` answers.

        Raises:
            RuntimeError: the server exited or did not answer in time; the message holds the end of its output.
        """
        command = [*insvp_command(), "serve", *self.args, "--host", "127.0.0.1", "--port", "0"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"insvp serve exited with status {self.process.returncode}:\n{self.output[-3000:]}")
            found = READY.search(self.output)
            if found and self._healthy(found.group(1)):
                self.url = found.group(1)
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"insvp serve did not answer within {self.startup_timeout:g} s:\n{self.output[-3000:]}")

    def _healthy(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def terminate(self) -> None:
        """Send SIGTERM: the server stops accepting connections and answers the requests in flight."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait (killing the server after ``timeout`` seconds); the exit status."""
        if self.process is None:
            return 0
        self.terminate()
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.returncode = self.process.wait()
        return self.returncode

    def rss_bytes(self) -> int:
        """The server's resident memory now (Linux: ``/proc/PID/status``)."""
        assert self.process is not None, "the server is not started"
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, flags=re.MULTILINE).group(1)) * 1024

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._own_log:
            self.log.unlink(missing_ok=True)
