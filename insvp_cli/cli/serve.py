"""``insvp serve``: trained checkpoints behind an HTTP API and a page, sharing their frozen backbones."""

from __future__ import annotations

from typing import Annotated

import typer

from ..serve.settings import TOKEN_ENV
from .app import TRAIN, app, console, err_console
from .options import DeviceOpt, SetOpt


@app.command(rich_help_panel=TRAIN)
def serve(
    checkpoints: Annotated[list[str], typer.Argument(
        help="Checkpoints (best.pt / last.pt) or run folders, each as CKPT or NAME=CKPT (NAME: the task's name in "
             "the URLs; default: the run folder's or file's name).", metavar="[NAME=]CKPT...", show_default=False)],
    host: Annotated[str, typer.Option(help="The address to listen on; 127.0.0.1 keeps the server to this machine.",
                                      metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The TCP port (0: any free one).", metavar="N")] = 8000,
    token: Annotated[str | None, typer.Option(help="A bearer token every route but /health requires.",
                                              envvar=TOKEN_ENV, metavar="TEXT", show_default=False)] = None,
    device: DeviceOpt = "auto",
    max_batch: Annotated[int, typer.Option(help="Images per forward: concurrent requests to a task are batched up "
                                                "to this (1: never).", metavar="N")] = 32,
    batch_wait: Annotated[float, typer.Option(help="Milliseconds the first image of a batch waits for others.",
                                              metavar="MS")] = 5.0,
    max_upload: Annotated[float, typer.Option(help="The largest request body, in MiB (larger: 413).",
                                              metavar="MIB")] = 10.0,
    drain_timeout: Annotated[float, typer.Option(help="Seconds that requests in flight get to finish after "
                                                 "SIGTERM or Ctrl-C.", metavar="S")] = 30.0,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log one line per request.")] = False,
    overrides: SetOpt = None,
) -> None:
    r"""Serve trained tasks over HTTP: GET /tasks, POST /tasks/NAME/predict (multipart images; ?top_k=,
    ?explain=gradcam), a page at / to try them, the schema at /docs.

    Tasks whose checkpoints were trained on the same frozen backbone share it in memory: each adds only its trained
    weights. Concurrent requests to a task are batched in one model worker. SIGTERM stops accepting connections,
    answers the requests in flight and exits with status 0. Needs the serve extra: pip install "insvp\[serve]".
    """
    from ..serve.settings import ServeSettings, check_serve_extra, task_specs

    specs = task_specs(checkpoints)
    settings = ServeSettings(host=host, port=port, token=token or None, device=device, max_batch=max_batch,
                             batch_wait_ms=batch_wait, max_upload_mb=max_upload, drain_timeout=drain_timeout,
                             access_log=access_log, overrides=tuple(overrides or ())).check()
    check_serve_extra()
    if not settings.loopback and settings.token is None:
        err_console.print(f"warning: serving on {host} without a token: anyone who reaches this port can use the "
                          f"tasks (--token or {TOKEN_ENV})", highlight=False, soft_wrap=True, markup=False)

    from ..serve.server import serve as run_server

    with err_console.status("loading") as status:
        result = run_server(
            specs, settings,
            on_task=lambda spec, i: status.update(f"loading task {spec.name} ({i + 1}/{len(specs)})"),
            on_ready=lambda tasks, url: (status.stop(), _announce(tasks, url, settings.token)),
        )
    requests, forwards = result.answered, result.batches
    err_console.print(f"stopped on SIGTERM: {requests} prediction request{'s' * (requests != 1)} answered in "
                      f"{forwards} forward{'s' * (forwards != 1)}", highlight=False, soft_wrap=True, markup=False)


def _announce(tasks: dict, url: str, token: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in ("task", "method", "classes", "extra params", "backbone"):
        table.add_column(column, justify="right" if column in ("classes", "extra params") else "left")
    for task in tasks.values():
        backbone = task.backbone["name"] + (f", shared with {', '.join(task.shared_with)}" if task.shared_with
                                            else ", its own")
        table.add_row(Text(task.name), task.method, str(len(task.classes)), f"{task.served.extra_params:,}",
                      Text(backbone))
    console.print(table)
    page = f"{url}/?token={token}" if token else f"{url}/"
    console.print(f"serving {len(tasks)} task{'s' * (len(tasks) != 1)} on {url} (page: {page}, API schema: "
                  f"{url}/docs); SIGTERM or Ctrl-C stops", highlight=False, soft_wrap=True, markup=False)
