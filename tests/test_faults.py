"""What the machine does to a run and what a user does to the terminal: kills in the middle of a checkpoint, stale
temp files, a run killed between its last epoch and its summary, closed and broken stdout, library warnings; and the
rules behind the one-line errors (every number bounded, YAML read one way, output paths checked first)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import types
import typing
import warnings
from pathlib import Path

import pytest

from insvp_cli.common.errors import ConfigError, UsageError
from insvp_cli.common.paths import check_output_file, check_output_folder
from insvp_cli.common.yamlio import load_yaml
from insvp_cli.config.schema import BackboneConfig, DataConfig, TrainConfig
from insvp_cli.methods import METHODS
from tests.conftest import INSVP, insvp, one_line_error, tiny_run
from tests.faults import fault_env


def sets(values: list[str]) -> list[str]:
    return [x for v in values for x in ("--set", v)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished one-epoch linear-probe run (copy it before changing it)."""
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.train.loop import fit

    run = tmp_path_factory.mktemp("finished") / "run"
    fit(resolve_config(None, tiny_run("linear", 1)), run)
    return run


@pytest.mark.parametrize("target", ["best.pt", "last.pt", "resume.pt"])
def test_a_run_killed_while_writing_a_checkpoint_resumes_and_leaves_no_temp_file(tmp_path, target):
    run = tmp_path / "run"
    killed = subprocess.run([str(INSVP), "train", *sets(tiny_run("linear", 1)), "--out", str(run)],
                            env=fault_env(tmp_path / "site", INSVP_TEST_KILL_WRITING=target), capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, in the middle of the write
    assert list(run.glob(f".{target}.*.tmp")), sorted(p.name for p in run.iterdir())  # what a kill leaves
    resumed = insvp("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(run.glob(".*.tmp")), sorted(p.name for p in run.iterdir())
    assert json.loads((run / "summary.json").read_text())["epochs"] == 1


def test_only_this_tools_temp_files_are_removed_when_a_run_opens_its_folder(finished, tmp_path):
    from insvp_cli.runs.folder import RunFolder

    run = Path(shutil.copytree(finished, tmp_path / "run"))
    stale = [run / ".best.pt.k2j4h8aq.tmp", run / ".resume.pt.x0x0x0x0.tmp", run / ".metrics.jsonl.abcdefgh.tmp"]
    mine = [run / "notes.tmp", run / ".mine.pt.abcdefgh.tmp"]
    for path in (*stale, *mine):
        path.write_bytes(b"partial")
    assert sorted(RunFolder(run).remove_stale_files()) == sorted(stale)
    assert all(p.exists() for p in mine) and not any(p.exists() for p in stale)


def test_a_run_killed_between_its_last_epoch_and_its_summary_is_finished_on_resume(finished, tmp_path):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").unlink()
    metrics = (run / "metrics.jsonl").read_text()
    proc = insvp("train", "--resume", run)
    assert proc.returncode == 0, proc.stderr
    assert f"finishing {run}: its 1 epochs are done" in proc.stderr and "epoch 2/1" not in proc.stderr
    assert (run / "metrics.jsonl").read_text() == metrics  # nothing trained past the end
    assert json.loads((run / "summary.json").read_text()) == summary


def test_a_run_killed_between_resume_pt_and_its_metrics_counts_the_epochs_resume_pt_keeps(tmp_path):
    from insvp_cli.resolve.layers import resolve_config
    from insvp_cli.train.loop import fit

    run = tmp_path / "run"
    fit(resolve_config(None, tiny_run("linear", 2)), run)
    rows = (run / "metrics.jsonl").read_text().splitlines()
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").unlink()
    (run / "metrics.jsonl").write_text(rows[0] + "\n")  # epoch 2's resume.pt was written, its row was not
    lowered = insvp("train", "--resume", run, "--set", "train.epochs=1")
    one_line_error(lowered.stderr, lowered.returncode, 2, "train.epochs=1 is below the 2 epochs the run has finished")
    assert not (run / "summary.json").exists()
    resumed = insvp("train", "--resume", run)
    assert resumed.returncode == 0, resumed.stderr
    assert f"finishing {run}: its 2 epochs are done" in resumed.stderr
    assert (run / "metrics.jsonl").read_text().splitlines() == rows
    assert json.loads((run / "summary.json").read_text()) == summary


def test_resume_below_the_epochs_done_is_refused(finished, tmp_path):
    from insvp_cli.runs.folder import RunFolder

    run = Path(shutil.copytree(finished, tmp_path / "run"))
    (run / "summary.json").unlink()
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    with pytest.raises(UsageError, match="train.epochs=1 is below the 2 epochs the run has finished"):
        RunFolder(run).resume_config()


@pytest.mark.parametrize("args", [["recipes"], ["data", "list"], ["--help"]], ids=["echo", "rich", "help"])
def test_a_reader_that_went_away_ends_the_command_quietly_with_0(args):
    # `insvp ... | head`: the read end is closed before the command writes anything
    proc = subprocess.Popen([str(INSVP), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err and "Exception ignored" not in err and "Traceback" not in err


def test_closed_and_full_stdout_are_one_line_and_exit_1():
    closed = subprocess.run(["sh", "-c", f'exec "{INSVP}" recipes >&-'], capture_output=True, text=True)
    one_line_error(closed.stderr, closed.returncode, 1, "stdout is closed")
    full = subprocess.run(["sh", "-c", f'exec "{INSVP}" recipes > /dev/full'], stderr=subprocess.PIPE, text=True)
    assert full.returncode == 1 and full.stderr.splitlines()[-1] == "error: no space left on device (stdout)"


def test_library_warnings_are_hidden_unless_debug(cli, monkeypatch, tmp_path):
    import insvp_cli.use.evaluate

    def noisy(*args, **kwargs):
        warnings.warn("a library speaks of its internals", UserWarning, stacklevel=1)
        raise UsageError("the one line")

    monkeypatch.setattr(insvp_cli.use.evaluate, "evaluate_checkpoint", noisy)
    (tmp_path / "x.pt").write_bytes(b"x")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, output = cli("evaluate", tmp_path / "x.pt")
    one_line_error(output, code, 2, "error: the one line")
    assert not seen
    with pytest.warns(UserWarning, match="a library speaks of its internals"):  # shown with --debug
        code, output = cli("--debug", "evaluate", tmp_path / "x.pt")
    assert code == 2 and "Traceback" in output


def test_insvp_notes_and_warnings_are_one_line_each(cli, monkeypatch, tmp_path):
    import insvp_cli.use.evaluate
    from insvp_cli.common.notes import note, warn

    def speaks(*args, **kwargs):
        note("a worker count\n  capped")
        warn("a row skipped")
        return {"acc": 50.0, "images": 2, "checkpoint": "x.pt", "logged_acc": None, "skipped_bad_images": 0}

    monkeypatch.setattr(insvp_cli.use.evaluate, "evaluate_checkpoint", speaks)
    (tmp_path / "x.pt").write_bytes(b"x")
    code, output = cli("evaluate", tmp_path / "x.pt")
    assert code == 0 and "note: a worker count capped\nwarning: a row skipped\n" in output


def _numeric(tp) -> bool:
    if tp in (int, float):
        return True
    return typing.get_origin(tp) in (typing.Union, types.UnionType, list) and any(map(_numeric, typing.get_args(tp)))


CONFIGS = [BackboneConfig, DataConfig, TrainConfig, *(METHODS.get(n).config_cls for n in METHODS.names())]


@pytest.mark.parametrize("cls", CONFIGS, ids=[f"{c.__module__.split('.')[-2]}.{c.__name__}" for c in CONFIGS])
def test_every_number_of_every_config_has_a_range_with_both_ends(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if _numeric(hints[f.name]):
            bounds = f.metadata.get("bounds")
            assert bounds is not None, f"{cls.__name__}.{f.name} has no bounded(...)"
            assert (bounds.ge, bounds.gt) != (None, None) and (bounds.le, bounds.lt) != (None, None), \
                f"{cls.__name__}.{f.name}: {bounds}"


def test_yaml_refuses_duplicate_keys_with_their_lines_and_keeps_merge_keys():
    with pytest.raises(ConfigError, match=r"^r.yaml:4:5: duplicate key 'lr' \(first at line 3\)"):
        load_yaml("data: {name: digits}\ntrain:\n    lr: 0.1\n    lr: 0.2\n", "r.yaml")
    with pytest.raises(ConfigError, match=r"^r.yaml:1:23: duplicate key 1"):
        load_yaml("classes: {1: a, 2: b, 1: c}", "r.yaml")
    base = "base: &b {lr: 0.1, epochs: 2}\ntrain:\n  <<: *b\n  lr: 0.5\n"
    assert load_yaml(base, "r.yaml")["train"] == {"lr": 0.5, "epochs": 2}  # a merged key may be overridden
    with pytest.raises(ConfigError, match=r"^r.yaml:2:1: .*\(while parsing a flow mapping at 1:8\)$"):
        load_yaml("train: {lr: 0.1\n", "r.yaml")


def test_output_paths_are_checked_without_creating_anything(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.csv").mkdir()
    assert check_output_file(tmp_path / "new" / "deeper" / "rows.CSV", (".csv",)) == tmp_path / "new/deeper/rows.CSV"
    assert check_output_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    for bad, message in [
        (lambda: check_output_file("", (".csv",)), "--out '': empty"),
        (lambda: check_output_file(tmp_path / "folder.csv", (".csv",)), "is a folder"),
        (lambda: check_output_file(tmp_path / "rows", (".csv", ".jsonl")), "it has no suffix; the formats written "
                                                                            "are .csv or .jsonl"),
        (lambda: check_output_file(tmp_path / "file" / "rows.csv", (".csv",)), "file is a file, not a folder"),
        (lambda: check_output_folder(tmp_path / "file", "--root"), f"--root {tmp_path / 'file'} is a file"),
        (lambda: check_output_folder("/proc/run"), "cannot write into /proc"),
    ]:
        with pytest.raises(UsageError, match=message.replace("(", r"\(")):
            bad()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.csv"]


def test_an_atomic_write_that_fails_names_the_target_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import io

    import torch

    import insvp_cli.common.atomic as atomic

    class Full(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    real = atomic.os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode="r", **kw: io.BufferedWriter(Full(fd, "w"))
                        if "b" in mode else real(fd, mode, **kw))
    with pytest.raises(OSError) as info:
        atomic.atomic_save({"w": torch.zeros(100_000)}, tmp_path / "best.pt")  # torch.save hides the write's error
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []
