"""``insvp serve`` as users run it: the installed script on a free loopback port, a real HTTP client.

Three tasks of two methods share one tiny ViT and a fourth has another; their answers are ``insvp predict``'s.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from insvp_cli.serve.process import ServerProcess, insvp_command
from tests.conftest import insvp, one_line_error

TOKEN = "test-token"


@pytest.fixture(scope="module")
def server(served_runs):
    args = [f"{name}={run}" for name, run in served_runs.runs.items()]
    with ServerProcess([*args, "--max-batch", "8", "--batch-wait", "20"], token=TOKEN) as server:
        yield server
        assert "Traceback" not in server.output, server.output


def _predict(server, task: str, images: list[Path], **params) -> requests.Response:
    files = [("files", (p.name, p.read_bytes(), "image/png")) for p in images]
    return requests.post(f"{server.url}/tasks/{task}/predict", params=params, files=files, headers=server.headers,
                         timeout=60)


def _insvp_predict(runs: dict[str, Path], images: list[Path], out: Path) -> dict[str, dict[str, dict]]:
    """Every run's rows of the installed ``insvp predict`` (all classes, JSONL), by task and file name; the runs in
    parallel."""
    procs = {name: subprocess.Popen([*insvp_command(), "predict", str(run), *map(str, images), "--top-k", "10",
                                     "--out", str(out / f"{name}.jsonl")], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True)
             for name, run in runs.items()}
    for proc in procs.values():
        assert proc.wait(300) == 0, proc.stderr.read()
    return {name: {Path(r["path"]).name: r for r in map(json.loads, (out / f"{name}.jsonl").read_text().splitlines())}
            for name in runs}


def test_every_task_answers_what_insvp_predict_gives(server, served_runs, tmp_path):
    """The acceptance: concurrent requests of one and of several images, batched, against insvp predict (1e-5)."""
    expected = _insvp_predict(served_runs.runs, served_runs.images, tmp_path)
    images = served_runs.images
    jobs = [(task, [image]) for task in served_runs.runs for image in images]  # one image per request
    jobs += [(task, images[:3]) for task in served_runs.runs]  # several
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: _predict(server, job[0], job[1], top_k=10), jobs))
    for (task, sent), answer in zip(jobs, answers, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["task"] == task and [p["file"] for p in body["predictions"]] == [p.name for p in sent]
        for row in body["predictions"]:
            reference = expected[task][row["file"]]
            assert row["classes"] == reference["classes"] and "gradcam" not in row
            np.testing.assert_allclose(row["probabilities"], reference["probabilities"], rtol=0, atol=1e-5)
    assert requests.get(f"{server.url}/health", timeout=10).json()["pending"] == 0


def test_tasks_lists_methods_parameters_and_the_shared_backbone(server, served_runs):
    answer = requests.get(f"{server.url}/tasks", headers=server.headers, timeout=10)
    assert answer.status_code == 200
    tasks = {t["name"]: t for t in answer.json()["tasks"]}
    assert list(tasks) == list(served_runs.runs)
    for name, task in tasks.items():
        summary = json.loads((served_runs.runs[name] / "summary.json").read_text())
        assert task["method"] == summary["method"] and len(task["classes"]) == summary["num_classes"]
        assert (task["trainable_params"], task["extra_params"]) == (summary["trainable_params"],
                                                                    summary["trainable_params_without_head"])
        assert task["checkpoint"] == str(served_runs.runs[name] / "best.pt")
    assert tasks["linear-a"]["extra_params"] == 0 and tasks["insvp-a"]["extra_params"] > 0
    assert tasks["linear-a"]["backbone"]["shared_with"] == ["insvp-a", "insvp-b"]
    assert tasks["vpt-c"]["backbone"]["shared"] is False and tasks["vpt-c"]["backbone"]["shared_with"] == []
    assert len({t["backbone"]["fingerprint"] for t in tasks.values()}) == 2
    assert tasks["insvp-a"]["classes"] == ["0", "1", "2"]


def test_gradcam_is_the_top_class_map_of_insvp_gradcam(server, served_runs):
    """``explain=gradcam``: the map of figures.cam.compute_cam for the top class, as PNGs at the input size."""
    from insvp_cli.figures.cam import compute_cam
    from insvp_cli.runs.trained import TrainedModel

    image = served_runs.images[0]
    answer = _predict(server, "insvp-a", [image], top_k=2, explain="gradcam")
    assert answer.status_code == 200, answer.text
    row = answer.json()["predictions"][0]
    cam = row["gradcam"]
    assert cam["class"] == row["classes"][0] and cam["probability"] == pytest.approx(row["probabilities"][0], abs=1e-5)
    heatmap = np.asarray(Image.open(io.BytesIO(base64.b64decode(cam["heatmap_png"]))))
    overlay = Image.open(io.BytesIO(base64.b64decode(cam["overlay_png"])))
    assert heatmap.shape == (32, 32) and overlay.size == (32, 32) and overlay.mode == "RGB"
    trained = TrainedModel.load(served_runs.runs["insvp-a"], device="cpu")
    with Image.open(image) as img:
        x = trained.transform(img.convert("RGB")).unsqueeze(0)
    expected, _ = compute_cam(trained.model, x)
    assert np.abs(heatmap.astype(np.float32) - np.round(expected * 255)).max() <= 1


def test_the_token_guards_every_route_but_health(server):
    url = server.url
    assert requests.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    for path in ("/tasks", "/", "/docs", "/openapi.json", "/page/app.js"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = requests.get(url + path, headers=headers, timeout=10)
            assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer", path
            assert "missing or wrong token" in answer.json()["detail"]
    assert requests.post(f"{url}/tasks/insvp-a/predict", files=[("files", ("x.png", b"x"))],
                         timeout=10).status_code == 401
    schema = requests.get(f"{url}/openapi.json", headers=server.headers, timeout=10).json()
    assert {"/health", "/tasks", "/tasks/{task}/predict"} <= set(schema["paths"])
    assert schema["security"] == [{"bearer": []}] and schema["paths"]["/health"]["get"]["security"] == []
    assert set(schema["paths"]["/tasks/{task}/predict"]["post"]["responses"]) == {"200", "400", "401", "404", "413"}
    # the page: /?token= once sets a cookie (and leaves the address bar), which then opens every route
    with requests.Session() as browser:
        first = browser.get(f"{url}/?token={TOKEN}", allow_redirects=False, timeout=10)
        assert first.status_code == 303 and first.headers["location"] == "/"
        assert "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers[
            "set-cookie"].lower()
        page = browser.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and '<script src="/page/app.js">' in page.text
        assert browser.get(f"{url}/page/style.css", timeout=10).headers["content-type"].startswith("text/css")
        assert browser.get(f"{url}/tasks", timeout=10).status_code == 200
        assert browser.get(f"{url}/page/../app.py", timeout=10).status_code == 404
    assert requests.get(f"{url}/?token=wrong", timeout=10).status_code == 401


def test_the_page_loads_nothing_from_elsewhere(server):
    """No CDN: every script, style and image of the page is served by the app itself."""
    page = requests.get(f"{server.url}/", headers=server.headers, timeout=10).text
    script = requests.get(f"{server.url}/page/app.js", headers=server.headers, timeout=10).text
    for text in (page, script):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


@pytest.mark.parametrize(("args", "code", "message"), [
    (["missing.pt"], 2, "error: checkpoint missing.pt does not exist"),
    (["{run}", "--device", "tpu"], 2, "error: --device: 'tpu' is not a device"),
    (["{run}", "--max-batch", "0"], 2, "error: --max-batch 0: give at least 1"),
    (["{broken}"], 2, "is not a readable insvp checkpoint"),
])
def test_bad_arguments_fail_in_one_line_before_serving(args, code, message, served_runs, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    run = served_runs.runs["linear-a"]
    proc = insvp("serve", *[a.format(run=run, broken=broken) for a in args], "--port", "0", timeout=120)
    one_line_error(proc.stderr, proc.returncode, code, message)


def test_a_port_in_use_is_a_usage_error(served_runs, server):
    port = server.url.rsplit(":", 1)[1]
    proc = insvp("serve", served_runs.runs["linear-a"], "--port", port, timeout=120)
    one_line_error(proc.stderr, proc.returncode, 2, f"--port {port}: cannot listen there")


def test_without_the_serve_extra_it_says_what_to_install(served_runs, tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['uvicorn'] = None\n")
    proc = subprocess.run([*insvp_command(), "serve", str(served_runs.runs["linear-a"])], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tmp_path)}, timeout=120)
    one_line_error(proc.stderr, proc.returncode, 2)
    assert proc.stderr.strip() == 'error: insvp serve needs uvicorn, which is not installed: pip install "insvp[serve]"'
