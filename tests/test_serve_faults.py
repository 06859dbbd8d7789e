"""``insvp serve`` under faults: each is answered in one line of JSON, never a 500 or a traceback, and the server
keeps answering; SIGTERM under load answers every request in flight and exits 0."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import requests

from insvp_cli.serve.process import ServerProcess

TOKEN = "fault-token"
TASK = "insvp-a"


@pytest.fixture(scope="module")
def server(served_runs):
    with ServerProcess([f"{TASK}={served_runs.runs[TASK]}", "--max-upload", "10"], token=TOKEN) as server:
        yield server
        assert "Traceback" not in server.output, server.output


@pytest.fixture
def png(served_runs) -> bytes:
    return served_runs.images[0].read_bytes()


def _post(server, body=None, *, files=None, headers=None, task=TASK, **params) -> requests.Response:
    return requests.post(f"{server.url}/tasks/{task}/predict", params=params, data=body, files=files,
                         headers={**server.headers, **(headers or {})}, timeout=60)


def _problem(answer: requests.Response, status: int, *needles: str) -> None:
    """A fault's answer: the status, JSON ``{"detail": one line}`` naming what was wrong."""
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail, detail
    for needle in needles:
        assert needle in detail, detail


def _still_serves(server, png: bytes) -> None:
    answer = _post(server, files=[("files", ("ok.png", png, "image/png"))])
    assert answer.status_code == 200 and answer.json()["predictions"][0]["file"] == "ok.png"


@pytest.mark.parametrize(("body", "content_type", "needle"), [
    (b"garbage", "multipart/form-data; boundary=xyz", ""),
    (b"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\nabc", "multipart/form-data; "
     "boundary=xyz", ""),  # never closed
    (b"files=abc", "multipart/form-data", "boundary"),
    (b'{"files": []}', "application/json", ""),
])
def test_a_malformed_multipart_body_is_a_400(server, png, body, content_type, needle):
    _problem(_post(server, body, headers={"Content-Type": content_type}), 400, needle)
    _still_serves(server, png)


def test_a_truncated_or_foreign_file_is_a_400_naming_it(server, png):
    _problem(_post(server, files=[("files", ("ok.png", png)), ("files", ("cut.png", png[: len(png) // 2]))]), 400,
             "image 'cut.png' cannot be read", "truncated")
    _problem(_post(server, files=[("files", ("notes.txt", b"not an image\n"))]), 400,
             "image 'notes.txt' cannot be read: UnidentifiedImageError: cannot identify image file 'notes.txt'")
    _still_serves(server, png)


def test_a_body_over_the_limit_is_a_413_with_or_without_its_length(server, png):
    big = np.random.default_rng(0).integers(0, 256, 20 * 2**20, dtype=np.uint8).tobytes()
    started = time.monotonic()
    _problem(_post(server, files=[("files", ("big.png", big))]), 413, "over the upload limit of 10 MiB")

    def chunks():  # no Content-Length: the body is counted as it arrives
        yield b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n'
        for start in range(0, len(big), 2**20):
            yield big[start : start + 2**20]

    _problem(_post(server, chunks(), headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 413,
             "over the upload limit")
    assert time.monotonic() - started < 30
    _still_serves(server, png)


def test_a_wrong_token_is_a_401_and_an_unknown_task_a_404(server, png):
    files = [("files", ("ok.png", png))]
    _problem(_post(server, files=files, headers={"Authorization": "Bearer nope"}), 401, "missing or wrong token")
    _problem(_post(server, files=files, task="nope"), 404, "unknown task 'nope'; tasks: insvp-a")
    _problem(_post(server, files=files, top_k=0), 400, "top_k")
    _problem(_post(server, files=files, explain="lime"), 400, "explain", "gradcam")
    _problem(_post(server, files=[("images", ("ok.png", png))]), 400, "files", "required")
    answer = _post(server, files=files, top_k=50)  # capped at the task's 3 classes
    assert answer.status_code == 200 and len(answer.json()["predictions"][0]["classes"]) == 3
    _still_serves(server, png)


def test_a_client_that_disconnects_mid_upload_leaves_the_server_answering(server, png):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    head = (f"POST /tasks/{TASK}/predict HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n"
            f"--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n\r\n").encode()
    for _ in range(3):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head + png[:50])
            time.sleep(0.2)
    _still_serves(server, png)
    assert requests.get(f"{server.url}/health", timeout=10).json()["pending"] == 0


def test_sigterm_under_load_answers_every_request_in_flight_and_exits_0(served_runs, tmp_path, png):
    """16 clients post in a loop; SIGTERM once requests wait in the batcher (a long batch wait keeps them there): every
    answer is a correct 200, those in flight are answered after the signal, then connections are refused."""
    run = served_runs.runs[TASK]
    server = ServerProcess([f"{TASK}={run}", "--batch-wait", "300", "--max-batch", "64"], token=TOKEN,
                           log=tmp_path / "serve.log").start()
    try:
        expected = _post(server, files=[("files", ("ok.png", png))]).json()["predictions"][0]["probabilities"]
        outcomes: list[tuple[object, float]] = []

        def client() -> None:
            while True:
                try:
                    answer = _post(server, files=[("files", ("ok.png", png))])
                except requests.ConnectionError:
                    return
                got = answer.json()["predictions"][0]["probabilities"] if answer.status_code == 200 else None
                correct = got is not None and np.allclose(got, expected, rtol=0, atol=1e-5)
                outcomes.append((answer.status_code if correct else answer.text, time.monotonic()))

        clients = [threading.Thread(target=client) for _ in range(16)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 60
        while requests.get(f"{server.url}/health", timeout=10).json()["pending"] < 8:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.02)
        signalled = time.monotonic()
        server.terminate()
        assert server.process.wait(60) == 0, server.output
        for thread in clients:
            thread.join(60)
        assert outcomes and all(status == 200 for status, _ in outcomes), outcomes
        assert sum(at > signalled for _, at in outcomes) >= 8  # the requests in flight at the signal
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{server.url}/health", timeout=5)
        assert "Traceback" not in server.output and "stopped on SIGTERM" in server.output, server.output
    finally:
        server.stop()
