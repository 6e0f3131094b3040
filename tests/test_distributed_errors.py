"""Issue 34: the multi-process launcher, its command and its arithmetic refuse bad input early and clearly.

No test here starts torchrun, trains or loads data: every refusal comes before a process is started.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vgg_helpers import distributed
from vgg_helpers.book.scaling import script_args
from vgg_helpers.distributed import (DEFAULT_RUN, Process, allreduce_seconds, command_args, expected_speedup, main,
                                     parse_command, prepare_model, process_device, ring_allreduce_seconds,
                                     throughput, weight_difference, weight_spread)
from vgg_helpers.settings import settings
from vgg_helpers.training import CheckpointError

ONE = Process(0, 0, 1, torch.device("cpu"), None)


@pytest.fixture
def no_process(monkeypatch):
    """Any attempt to start the training script fails the test: the checks must come first."""
    def started(cmd, **_kwargs):
        raise AssertionError(f"a process was started: {cmd}")
    monkeypatch.setattr(distributed.subprocess, "run", started)


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    return path


# ---- launch ----

@pytest.mark.parametrize("processes, kwargs, error, match", [
    ("2", {}, TypeError, r"^processes must be a whole number >= 1 \(or None for no torchrun.*Write processes=2 "),
    (1.5, {}, TypeError, r"^processes must be a whole number >= 1 .*got 1\.5 \(float\)"),
    (True, {}, TypeError, r"^processes must be a whole number >= 1 .*got True \(bool\)"),
    (0, {}, ValueError, r"^processes must be a whole number >= 1 \(or None for no torchrun, one process\); got 0"),
    (None, {"threads": "2"}, TypeError, r"^threads must be a whole number >= 1.*Write threads=2"),
    (None, {"threads": 0}, ValueError, r"^threads must be a whole number >= 1.*got 0\."),
    (None, {"timeout": 0}, ValueError, r"^timeout must be seconds > 0, e\.g\. 3600; got 0\."),
    (None, {"timeout": -5}, ValueError, r"^timeout must be seconds > 0"),
    (None, {"timeout": "60"}, TypeError, r"^timeout must be seconds > 0.*Write timeout=60"),
    (2, {"max_restarts": -1}, ValueError, r"^max_restarts must be a whole number >= 0"),
    (None, {"max_restarts": 1}, ValueError, r"^max_restarts=1 needs torchrun.*launch\(out, 1, \.\.\.\)"),
])
def test_launch_refuses_bad_settings_before_starting_anything(no_process, tmp_path, processes, kwargs, error, match):
    with pytest.raises(error, match=match):
        distributed.launch(tmp_path / "run", processes, **kwargs)


@pytest.mark.parametrize("args, match", [
    ((["--budget", "smoke"],), (r"^launch's options must be separate strings, e\.g\. launch\(out, 2, '--epochs', "
                                r"'3'\); option 1 is \['--budget', 'smoke'\] \(list\)\. To pass a list of options, "
                                r"unpack it: launch\(out, 2, \*options\)\.$")),
    (("--epochs", 3), r"^launch's options must be separate strings.*option 2 is 3 \(int\)\.$"),
    (("--lr", None), r"option 2 is None \(NoneType\)"),
])
def test_launch_wants_its_options_as_separate_strings(no_process, tmp_path, args, match):
    with pytest.raises(TypeError, match=match):
        distributed.launch(tmp_path / "run", 2, *args)


@pytest.mark.parametrize("out", [None, 3])
def test_launch_refuses_an_out_that_is_no_path(no_process, out):
    with pytest.raises(TypeError, match=r"^out must be a run's folder, a str or Path such as 'runs/ddp'; got "):
        distributed.launch(out, None)


def test_launch_refuses_an_existing_file_as_out_and_leaves_it(no_process, a_file):
    with pytest.raises(ValueError, match=r"out='.*notes\.txt' is a file, not a folder.*left as it is"):
        distributed.launch(a_file, None)
    assert a_file.read_text() == "mine"


def test_launch_passes_paths_among_the_options_as_strings(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **_kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="usage: ...")
    monkeypatch.setattr(distributed.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="exit 1"):
        distributed.launch(tmp_path / "run", None, "--data-dir", tmp_path / "cifar", threads=1)
    assert all(isinstance(part, str) for part in seen["cmd"]) and str(tmp_path / "cifar") in seen["cmd"]


# ---- the command's flags ----

@pytest.mark.parametrize("argv, match", [
    (["--epochs", "0"], r"argument --epochs: epochs must be a whole number >= 1; got 0\."),
    (["--batch-size", "-4"], r"argument --batch-size: batch_size must be a whole number >= 1; got -4\."),
    (["--train-size", "0"], r"argument --train-size: train_size must be a whole number >= 1 \(or None for all\)"),
    (["--val-size", "-1"], r"argument --val-size: val_size must be a whole number >= 0"),
    (["--threads", "0"], r"argument --threads: threads must be a whole number >= 1"),
    (["--split-seed", "-1"], r"argument --split-seed: split_seed must be a whole number >= 0"),
    (["--width", "0"], r"argument --width: width must be a positive channel multiplier"),
    (["--head", "big"], r"argument --head: head must be one of 'imagenet', 'cifar'"),
    (["--input-size", "33"], r"argument --input-size: input_size must be a multiple of 32"),
    (["--num-classes", "0"], r"argument --num-classes: num_classes must be a whole number >= 1"),
    (["--arch", "vgg99"], r"error: Unknown VGG configuration 'vgg99'\. Valid names: vgg11"),
    (["--lr", "-0.1"], r"argument --lr: lr must be a number in \(0, inf\); got -0\.1"),
    (["--schedule", "step"], r"argument --schedule: schedule must be one of 'constant', 'onecycle'"),
    (["--max-steps", "0"], r"argument --max-steps: max_steps must be a whole number >= 1"),
    (["--crash", "1", "5"], (r"argument --crash: RANK must be one of the 1 process\(es\), 0 to 0, and STEP a "
                             r"training step, 0 or more; got RANK 1, STEP 5\.")),
    (["--crash", "0", "-1"], r"argument --crash: .*got RANK 0, STEP -1\."),
])
def test_a_bad_flag_is_a_usage_error_that_names_it(capsys, argv, match):
    with pytest.raises(SystemExit) as stop:
        parse_command(["--out", "runs/x", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err


@pytest.mark.parametrize("argv, match", [
    (["--batch-size", "33"], (r"argument --batch-size: 33 images do not split evenly over 2 processes: use a "
                              r"multiple of 2, e\.g\. 32\.")),
    (["--crash", "2", "11"], r"argument --crash: RANK must be one of the 2 process\(es\), 0 to 1"),
])
def test_flags_that_do_not_fit_torchruns_processes_are_refused(monkeypatch, capsys, argv, match):
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit):
        parse_command(["--out", "runs/x", *argv])
    assert re.search(match, capsys.readouterr().err)


def test_main_refuses_an_out_that_is_a_file_before_any_process_group(capsys, a_file):
    with pytest.raises(SystemExit):
        main(["--out", str(a_file)])
    assert "argument --out: out=" in capsys.readouterr().err and a_file.read_text() == "mine"
    assert not torch.distributed.is_initialized()


def test_the_command_line_prints_a_usage_error_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vgg_helpers.distributed", "--out", str(tmp_path / "x"),
                           "--epochs", "0"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "error: argument --epochs: epochs must be a whole number >= 1; got 0." in proc.stderr
    assert not (tmp_path / "x").exists()


# ---- command_args and the chapter's plans ----

@pytest.mark.parametrize("args, kwargs, error, match", [
    (({"epochs": 2}, {}, {}), {}, TypeError, r"^run must be a RunBudget .*got \{'epochs': 2\} \(dict\)\. Build one"),
    ((None, {}, {}), {}, TypeError, r"^run must be a RunBudget"),
    ((DEFAULT_RUN, None, {}), {}, TypeError, r"^model must be a dict of settings, e\.g\. \{'width': 0\.5\}"),
    ((DEFAULT_RUN, {}, ["lr"]), {}, TypeError, r"^recipe must be a dict of settings.*got \['lr'\] \(list\)"),
    ((DEFAULT_RUN, {"width": [0.5]}, {}), {}, TypeError, r"^model\['width'\] must be a string, number or bool"),
    ((DEFAULT_RUN, {}, {}), {"split_seed": "1"}, TypeError, r"^split_seed must be a whole number >= 0.*Write "),
    ((DEFAULT_RUN, {}, {}), {"augment": "no"}, TypeError, r"^augment must be True or False; got 'no' \(str\)"),
])
def test_command_args_refuses_what_cannot_become_flags(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        command_args(*args, **kwargs)


def test_script_args_wants_a_plan_and_points_to_the_budget_form():
    with pytest.raises(TypeError, match=r"^plan must be a Plan.*got 'smoke' \(str\)\. For a budget's plan, use "
                                        r"scaling_args\('smoke'\)\.$"):
        script_args("smoke")


# ---- run(), in this process: refused before any data is loaded ----

@pytest.fixture
def no_data(monkeypatch):
    def loaded(*_args, **_kwargs):
        raise AssertionError("data was loaded")
    monkeypatch.setattr(distributed, "load_cifar10", loaded)


def test_run_refuses_a_file_as_its_folder(no_data, a_file):
    with pytest.raises(ValueError, match="is a file, not a folder"):
        distributed.run(a_file, ONE)
    assert a_file.read_text() == "mine"


@pytest.mark.parametrize("process, run, match", [
    (None, DEFAULT_RUN, r"^process must be a Process, what setup\(\) returns; got None"),
    (ONE, {"epochs": 2}, r"^run must be a RunBudget"),
])
def test_run_refuses_a_wrong_process_or_budget(no_data, tmp_path, process, run, match):
    with pytest.raises(TypeError, match=match):
        distributed.run(tmp_path / "out", process, run)


# ---- weight_difference ----

def test_weight_difference_names_a_run_that_has_not_finished(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(FileNotFoundError, match=r"^No weights\.pt in a='.*a': a run writes it when it finishes"):
        weight_difference(tmp_path / "a", tmp_path / "a")
    with pytest.raises(FileNotFoundError, match=r"No weights\.pt in b="):
        weight_difference(_finished(tmp_path / "done"), tmp_path / "missing")


def _finished(folder: Path) -> Path:
    folder.mkdir()
    torch.save(nn.Linear(2, 2).state_dict(), folder / "weights.pt")
    return folder


@pytest.mark.parametrize("content, match", [
    (b"garbage", (r"^Cannot read .*weights\.pt: it is damaged or not a PyTorch file \(UnpicklingError\)\. The "
                  r"file was left as it is\.$")),
    ([1, 2], r"weights\.pt holds a list, not the weights a run saves \(a state_dict\)"),
    ({}, r"weights\.pt holds a dict, not the weights"),
])
def test_weight_difference_refuses_a_file_that_holds_no_weights_and_keeps_it(tmp_path, content, match):
    run = tmp_path / "run"
    run.mkdir()
    if isinstance(content, bytes):
        (run / "weights.pt").write_bytes(content)
    else:
        torch.save(content, run / "weights.pt")
    before = (run / "weights.pt").read_bytes()
    with pytest.raises(CheckpointError, match=match):
        weight_difference(_finished(tmp_path / "done"), run)
    assert (run / "weights.pt").read_bytes() == before


def test_weight_difference_wants_the_run_folders(tmp_path):
    done = _finished(tmp_path / "done")
    with pytest.raises(ValueError, match=r"^a='.*weights\.pt' is a file, not a folder"):
        weight_difference(done / "weights.pt", done)
    with pytest.raises(TypeError, match=r"^b must be a run's folder.*got None"):
        weight_difference(done, None)


# ---- the pieces: devices, models, timing arithmetic ----

def _launched(**extra: str):
    return settings({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", **extra}).launch


def test_process_device_names_its_arguments(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TypeError, match=r"^launch must be what torchrun told this process \(settings\(\)\.launch\); "
                                        r"got None.*use setup\(\)"):
        process_device(None, "cpu")
    with pytest.raises(TypeError, match=r"^device must be 'cpu', 'cuda' or None; got 0 \(int\)"):
        process_device(_launched(), 0)
    assert process_device(_launched(), torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device='cuda' but PyTorch sees no GPU on this machine: train on the CPU "
                                         r"\(--device cpu"):
        process_device(_launched(), "cuda")


@pytest.mark.parametrize("call, error, match", [
    (lambda: prepare_model(nn.Linear(2, 2), None), TypeError, r"^process must be a Process.*got None"),
    (lambda: prepare_model(nn.Linear(2, 2), ONE, "no"), TypeError, r"^sync_batchnorm must be True or False"),
    (lambda: weight_spread("net"), TypeError, r"^model must be a torch\.nn\.Module.*got 'net' \(str\)"),
    (lambda: throughput([0.0, 1.0, 2.0, 3.0], "128"), TypeError, r"^batch_size must be a whole number >= 1"),
    (lambda: throughput([0.0, 1.0, 2.0, 3.0], 0), ValueError, r"^batch_size must be a whole number >= 1.*got 0"),
    (lambda: throughput("0123", 32), TypeError, r"^step_times must be a list of times in seconds"),
    (lambda: throughput(None, 32), TypeError, r"^step_times must be a list of times"),
    (lambda: throughput([0.0, "1", 2.0], 32), TypeError, r"^step_times\[1\] must be a number"),
    (lambda: throughput([1.0, 1.0, 1.0, 1.0], 32), ValueError, r"^step_times must increase"),
    (lambda: throughput([3.0, 2.0, 1.0, 0.0], 32), ValueError, r"^step_times must increase"),
    (lambda: allreduce_seconds("5"), TypeError, r"^numel must be a whole number >= 1.*Write numel=5"),
    (lambda: allreduce_seconds(-1), ValueError, r"^numel must be a whole number >= 1"),
    (lambda: allreduce_seconds(10, repeats=0), ValueError, r"^repeats must be a whole number >= 1"),
    (lambda: ring_allreduce_seconds(1e9, "4", 1e9), TypeError, r"^processes must be a whole number >= 1.*Write "),
    (lambda: ring_allreduce_seconds(1e9, 1.5, 1e9), TypeError, r"^processes must be a whole number.*1\.5 \(float\)"),
    (lambda: ring_allreduce_seconds(-1, 2, 1e9), ValueError, r"^nbytes must be a size in bytes >= 0"),
    (lambda: ring_allreduce_seconds("1e9", 2, 1e9), TypeError, r"^nbytes must be a size in bytes"),
    (lambda: ring_allreduce_seconds(1e9, 2, -1), ValueError, r"^bandwidth must be bytes per second > 0"),
    (lambda: ring_allreduce_seconds(1e9, 2, float("nan")), ValueError, r"^bandwidth must be .*got nan"),
    (lambda: expected_speedup("2", 1.0, 0.0), TypeError, r"^processes must be a whole number >= 1"),
    (lambda: expected_speedup(0, 1.0, 0.0), ValueError, r"^processes must be a whole number >= 1.*got 0\."),
    (lambda: expected_speedup(2, "1", 0.0), TypeError, r"^step_seconds must be seconds > 0.*Write step_seconds=1"),
    (lambda: expected_speedup(2, 1.0, float("nan")), ValueError, r"^exchange_seconds must be seconds >= 0"),
])
def test_the_pieces_name_a_bad_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()

