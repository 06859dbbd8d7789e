"""The FastAPI application of ``insvp serve``: the API, its OpenAPI schema and the page to try the tasks.

=========================================  ======================================================================
route                                      what it answers
=========================================  ======================================================================
``GET /health``                            ``{"status": "ok", ...}``; the only route without the token
``GET /tasks``                             every task: name, method, classes, parameter counts, backbone
``POST /tasks/{task}/predict``             top-k classes and probabilities per uploaded image (multipart field
                                           ``files``, one or many; ``?top_k=``, ``?explain=gradcam``)
``GET /``, ``/page/...``                   the page (no build step, nothing from elsewhere)
``GET /docs``, ``/openapi.json``           the API's schema
=========================================  ======================================================================

Errors are JSON ``{"detail": "one line"}``: 400 a bad request (malformed multipart, an image that cannot be read,
a bad parameter), 401 a missing or wrong token, 404 an unknown task, 413 a body over the limit, 500 a model that
failed. The token is checked, and an oversized body refused, before the body is read (:mod:`.guard`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from importlib import resources
from importlib.metadata import version
from typing import Annotated, Any

import torch
from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from PIL import Image

from ..data.base import IMAGE_READ_ERRORS
from .batching import ModelWorker
from .explain import gradcam
from .guard import COOKIE, Guard, one_line
from .schema import Explain, Health, Predictions, Problem, Tasks
from .settings import ServeSettings
from .tasks import Task

log = logging.getLogger("insvp.serve")
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
# at most this many pixels per image (PIL's decompression-bomb warning threshold): a small file cannot make the
# server decode a huge canvas
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
ERRORS = {400: {"model": Problem, "description": "a malformed request or an image that cannot be read"},
          401: {"model": Problem, "description": "a missing or wrong token"}}


class _Upload(io.BytesIO):
    """An upload's bytes, shown by its file name in PIL's errors ("cannot identify image file 'x.png'")."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.label = name

    def __repr__(self) -> str:
        return repr(self.label)


def decode(data: bytes, name: str, transform: Any) -> torch.Tensor:
    """An uploaded image as the task's model takes it: decoded to RGB as ``insvp predict`` reads files, then its
    evaluation transform ``(3, H, W)``.

    Raises:
        HTTPException: 400 naming the file, when it is not a readable image or has more than :data:`MAX_PIXELS`.
    """
    try:
        with Image.open(_Upload(data, name)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise HTTPException(400, f"image {name!r} has {img.width}x{img.height} pixels; at most {MAX_PIXELS:,} "
                                         f"are accepted")
            rgb = img.convert("RGB")  # decodes the whole file, so a truncated one fails here
    except IMAGE_READ_ERRORS as exc:
        raise HTTPException(400, one_line(f"image {name!r} cannot be read: {type(exc).__name__}: {exc}")) from None
    return transform(rgb)


def create_app(tasks: dict[str, Task], settings: ServeSettings) -> FastAPI:
    """The application serving ``tasks``; its model worker starts and stops with it (lifespan)."""
    worker = ModelWorker(lambda name, images: tasks[name].served.probabilities(images), settings.max_batch,
                         settings.batch_wait_ms / 1000.0)
    # decoding and transforming uploads (CPU work, bounded so that big images cannot pile up in memory)
    decoder = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="insvp-decode")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            yield
        finally:  # after uvicorn has answered every request in flight: nothing is queued any more
            await asyncio.to_thread(worker.stop)
            decoder.shutdown()

    app = FastAPI(title="insvp serve", version=version("insvp"), lifespan=lifespan, summary=(
        "Tasks adapted by InsVP and the comparison methods, sharing frozen backbones; send the token as "
        "'Authorization: Bearer TOKEN' (the page: open /?token=TOKEN once)."))
    app.state.worker = worker
    app.state.answered = 0
    app.add_middleware(Guard, token=settings.token, max_body=settings.max_upload_bytes)

    schema = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's schema as this app answers: a bad parameter is a 400 (not FastAPI's 422), and the bearer token
        is required on every route but /health when one is set."""
        document = schema()
        for operations in document["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
        if settings.token:
            document.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            document["security"] = [{"bearer": []}]
        return document

    app.openapi = openapi

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": one_line(problems)}, status_code=400)

    @app.get("/health", response_model=Health, tags=["server"], openapi_extra={"security": []})
    async def health() -> dict[str, Any]:
        """Whether the server answers (no token needed)."""
        return {"status": "ok", "tasks": len(tasks), "pending": worker.pending}

    @app.get("/tasks", response_model=Tasks, tags=["tasks"], responses={401: ERRORS[401]})
    async def list_tasks() -> dict[str, Any]:
        """Every task: its method, classes, trainable and extra parameters, and backbone (shared or its own)."""
        return {"tasks": [task.describe() for task in tasks.values()]}

    @app.post("/tasks/{task}/predict", response_model=Predictions, response_model_exclude_none=True, tags=["tasks"],
              responses={**ERRORS, 404: {"model": Problem, "description": "an unknown task"},
                         413: {"model": Problem, "description": "a body over the upload limit"}})
    async def predict(
        task: str,
        files: Annotated[list[UploadFile], File(description="one or more images (any format PIL reads)")],
        top_k: Annotated[int, Query(ge=1, description="classes per image (at most the task's classes)")] = 5,
        explain: Annotated[Explain | None, Query(description="gradcam: add the Grad-CAM of the top class")] = None,
    ) -> dict[str, Any]:
        """Classify the uploaded images with one task: the same classes and probabilities as ``insvp predict``."""
        chosen = _task(tasks, task)
        names = [f.filename or f"file {i + 1}" for i, f in enumerate(files)]
        data = [await f.read() for f in files]
        loop = asyncio.get_running_loop()
        images = list(await asyncio.gather(*(loop.run_in_executor(decoder, decode, d, n, chosen.served.transform)
                                             for d, n in zip(data, names, strict=True))))
        del data
        probabilities = await _model(chosen, worker.predict(chosen.name, images))
        k = min(top_k, len(chosen.classes))
        rows = []
        for name, p in zip(names, probabilities, strict=True):
            values, labels = p.topk(k)
            rows.append({"file": name, "classes": [chosen.classes[j] for j in labels.tolist()],
                         "probabilities": values.tolist()})
        if explain is not None:
            for row, image in zip(rows, images, strict=True):
                row["gradcam"] = await _model(chosen, worker.call(partial(gradcam, chosen.served, image,
                                                                          chosen.classes)))
        app.state.answered += 1
        return {"task": chosen.name, "predictions": rows}

    @app.get("/", include_in_schema=False)
    async def page(token: str | None = None) -> Response:
        if token is not None:  # the Guard accepted it: keep it in a cookie, and out of the address bar
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        return _page_file("index.html", "text/html")

    @app.get("/page/{name}", include_in_schema=False)
    async def page_file(name: str) -> Response:
        if name not in PAGE_FILES:
            raise HTTPException(404, f"no page file {name!r}")
        return _page_file(name, PAGE_FILES[name])

    return app


def _task(tasks: dict[str, Task], name: str) -> Task:
    if name not in tasks:
        raise HTTPException(404, f"unknown task {name!r}; tasks: {', '.join(tasks)}")
    return tasks[name]


async def _model(task: Task, future: Any) -> Any:
    """The result of work queued in the model worker; a failure is a 500 with one line (and one line in the log)."""
    try:
        return await asyncio.wrap_future(future)
    except Exception as exc:
        message = one_line(f"the model of task {task.name} failed: {type(exc).__name__}: {exc}")
        log.error(message)
        raise HTTPException(500, message) from None


def _page_file(name: str, media_type: str) -> Response:
    path = resources.files(__package__).joinpath("page", name)
    return FileResponse(str(path), media_type=media_type)
