"""The front door as a user meets it: the installed ``insvp`` script, its exit codes, messages and start-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import INSVP, insvp, one_line_error, tiny_run


def sets(overrides: list[str]) -> list[str]:
    return [x for s in overrides for x in ("--set", s)]


@pytest.mark.parametrize(("args", "needles"), [
    (["train", "--bogus-option"], ["No such option: --bogus-option", "(insvp train --help shows the usage)"]),
    (["nosuchcommand"], ["No such command 'nosuchcommand'", "(insvp --help shows the usage)"]),
    (["evaluate"], ["Missing argument 'CKPT'", "(insvp evaluate --help shows the usage)"]),
], ids=["unknown-option", "unknown-command", "missing-argument"])
def test_parser_errors_are_one_line_naming_the_help_and_exit_2(args, needles):
    proc = insvp(*args)
    one_line_error(proc.stderr, proc.returncode, 2, "error: ", *needles)


@pytest.mark.parametrize(("args", "needles"), [
    (["train", "--set", "train.lrr=1"], ["unknown key train.lrr; valid keys: epochs, lr"]),
    (["train", "--set", "train.eval_every=0"], ["train.eval_every: 0 is not in [1, 100000]"]),
    (["train", "--recipe", "nosuchrecipe"], ["recipe nosuchrecipe does not exist"]),
], ids=["unknown-key", "eval-every-0", "unknown-recipe"])
def test_our_usage_errors_are_one_line_and_exit_2(args, needles):
    proc = insvp(*args)
    one_line_error(proc.stderr, proc.returncode, 2, *needles)


def test_a_corrupt_checkpoint_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    proc = insvp("evaluate", bad)
    one_line_error(proc.stderr, proc.returncode, 2, f"checkpoint {bad} is not a readable insvp checkpoint")


def test_help_usage_errors_missing_files_and_version_import_no_torch():
    code = ("import sys; from insvp_cli.cli import run; "
            "codes = [run(['--help']), run(['train', '--help']), run(['train', '--bogus']), "
            "run(['train', '--set', 'train.lr=-1']), run(['--version'])] + "
            "[run([c, 'missing.pt', 'x.png']) for c in ('predict', 'gradcam')] + "
            "[run([c, 'missing.pt']) for c in ('evaluate', 'export')] + [run(['plot', 'not-a-run'])]; "
            "print(codes, 'torch' in sys.modules, 'timm' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "[0, 0, 2, 2, 0, 2, 2, 2, 2, 2] False False", proc.stdout + proc.stderr
    assert "Usage: insvp train [OPTIONS]" in proc.stdout and "train.lr: -1.0 is not in (0, 1000000]" in proc.stderr
    # a missing checkpoint or run folder fails at once, before torch
    assert proc.stderr.count("checkpoint missing.pt does not exist") == 4
    assert "not-a-run is not a run folder" in proc.stderr


def test_help_lists_the_commands_in_panels_with_plain_metavars(cli):
    code, output = cli("--help")
    assert code == 0
    panels = ["Train and use a model", "Reproduce the paper", "Inspect", "Tools"]
    assert [output.index(p) for p in panels] == sorted(output.index(p) for p in panels)
    assert output.index("train ") < output.index("evaluate ") < output.index("reproduce ")
    code, output = cli("train", "--help")
    assert "<bool>" not in output and "<list" not in output
    assert "KEY=VALUE" in output and "NAME|PATH" in output and "PATH" in output


def _command_paths(command=None, path=()) -> list[tuple[str, ...]]:
    """Every command and subcommand of ``insvp`` (the root first), as the words that name it."""
    import typer

    from insvp_cli.cli import app

    command = command or typer.main.get_command(app)
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


def _help_paragraphs(path: tuple[str, ...]) -> list[str]:
    import typer

    from insvp_cli.cli import app
    from insvp_cli.cli.app import unwrap

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    text = unwrap(command.help or "")
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip() and not p.startswith("\b")]


COMMANDS = _command_paths()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "insvp" for p in COMMANDS])
def test_every_help_renders_its_paragraphs_as_written_with_plain_names(path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "240", "NO_COLOR": "1"}
    proc = subprocess.run([str(INSVP), *path, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "" and "Traceback" not in proc.stdout, proc.stdout + proc.stderr
    usage = next(line for line in proc.stdout.splitlines() if "Usage:" in line)
    for typer_style in ("{", "<path>", "<list[", "<str>", "<int>", "<float>"):
        assert typer_style not in proc.stdout, f"{typer_style} in {usage}"
    lines = [" ".join(line.strip(" │").split()) for line in proc.stdout.splitlines()]
    for paragraph in _help_paragraphs(path):
        # a terminal 240 columns wide holds 200 characters of a paragraph on one line unless the paragraph breaks
        start = paragraph[:200]
        assert any(start in line for line in lines), f"{start!r} is broken across lines in:\n{proc.stdout}"


def test_unwrap_keeps_paragraphs_and_list_items():
    from insvp_cli.cli.app import unwrap

    text = "First line\n    goes on.\n\n    Second\n    paragraph.\n\n    - item one\n      continues\n    - item two"
    assert unwrap(text) == "First line goes on.\n\nSecond paragraph.\n\n- item one continues\n- item two"


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(cli, monkeypatch, tmp_path):
    import insvp_cli.use.evaluate

    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(insvp_cli.use.evaluate, "evaluate_checkpoint", broken)
    checkpoint = tmp_path / "x.pt"
    checkpoint.write_bytes(b"x")  # a file is there; what evaluates it breaks
    code, output = cli("evaluate", checkpoint)
    one_line_error(output, code, 1, "unexpected ZeroDivisionError: float division by zero", "--debug")
    code, output = cli("--debug", "evaluate", checkpoint)
    assert code == 1 and "Traceback" in output


def test_file_system_errors_name_the_path(cli, monkeypatch, tmp_path):
    import insvp_cli.use.evaluate

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", "runs/x/last.pt")

    monkeypatch.setattr(insvp_cli.use.evaluate, "evaluate_checkpoint", full)
    (tmp_path / "x.pt").write_bytes(b"x")
    code, output = cli("evaluate", tmp_path / "x.pt")
    one_line_error(output, code, 1, "no space left on device (runs/x/last.pt)")


def test_exit_codes_set_by_commands_reach_the_shell(tmp_path):
    from tests.fabricate import make_vtab

    task = tmp_path / "dtd"
    make_vtab(task)
    next(iter(sorted((task / "images" / "test").iterdir()))).unlink()
    proc = insvp("data", "check", "vtab", "--root", task)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test: 1 files missing" in proc.stdout and "not ready" in proc.stdout and "Traceback" not in proc.stderr


def _wait_for(predicate, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_second_trainer_is_refused_and_ctrl_c_exits_130_with_the_resume_hint(tmp_path, cli):
    run = tmp_path / "run"
    args = ["train", *sets(tiny_run("linear", 500)), "--out", str(run)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    # the trainer starts as from a shell, with Ctrl-C at its default: a test process may hold SIGINT ignored or
    # blocked (libraries do so around the processes they start), and a child inherits both through exec
    shell_like = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); os.execv(sys.argv[1], sys.argv[1:])")
    first = subprocess.Popen([sys.executable, "-c", shell_like, str(INSVP), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_for(lambda: (run / "metrics.jsonl").is_file(), "the first epoch")
        config = (run / "config.yaml").read_bytes()
        # a second `insvp train` on the folder, and a resume of it while the first one trains
        second = insvp(*args)
        one_line_error(second.stderr, second.returncode, 2, f"--out {run} already holds a run")
        code, output = cli("train", "--resume", run)
        one_line_error(output, code, 2, f"{run} is in use: process {first.pid} on ")
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, err
    assert f"insvp train --resume {run}" in err and "Traceback" not in err
    assert (run / "config.yaml").read_bytes() == config
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    done = len(rows)
    assert [r["epoch"] for r in rows] == list(range(1, done + 1))
    # the interrupted run continues; it may end earlier than planned (epochs may change on resume)
    code, output = cli("train", "--resume", run, "--set", f"train.epochs={done + 1}")
    assert code == 0, output
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, done + 2))
    assert json.loads((run / "summary.json").read_text())["epochs"] == done + 1
