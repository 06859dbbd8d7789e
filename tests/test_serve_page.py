"""The page of ``insvp serve`` in a real headless Chromium (the system's, driven by selenium): upload a digit, the
top class appears with its Grad-CAM. Skipped where no Chromium with chromedriver is installed."""

from __future__ import annotations

import importlib.util

import pytest
import requests

from insvp_cli.serve.process import ServerProcess
from tests.conftest import REPO


def _page_driver():
    spec = importlib.util.spec_from_file_location("serve_page", REPO / "docs" / "serve_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_dropped_digit_shows_its_top_class_and_grad_cam(served_runs, tmp_path):
    pytest.importorskip("selenium", reason="the page's test drives Chromium with selenium (the test extra)")
    page = _page_driver()
    if page.chromium() is None:
        pytest.skip("no Chromium with chromedriver on this machine (Debian: apt-get install chromium chromium-driver)")
    digit = served_runs.images[1]
    with ServerProcess([f"{name}={run}" for name, run in served_runs.runs.items()], token="page-token") as server:
        api = requests.post(f"{server.url}/tasks/insvp-b/predict", params={"top_k": 3}, headers=server.headers,
                            files=[("files", (digit.name, digit.read_bytes()))], timeout=60).json()
        shown = page.try_page(server.url, "page-token", "insvp-b", digit, tmp_path / "page.png")
    assert shown == api["predictions"][0]["classes"][: len(shown)] and len(shown) == 3
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
