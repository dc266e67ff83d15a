from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import requires_torch

from fer_mask_ros.cli import COMMANDS, main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_no_arguments_prints_help_and_exits_0():
    proc = subprocess.run([sys.executable, "-m", "fer_mask_ros"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m fer_mask_ros" in proc.stdout
    for name in COMMANDS:
        assert name in proc.stdout
    assert proc.stderr == ""


def test_help_flag(capsys):
    assert main(["--help"]) == 0
    assert "mask" in capsys.readouterr().out


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err
    assert "mask" in err  # lists the commands


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"python -m fer_mask_ros {command}" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["mask"])  # INPUT and --output missing
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


def test_train_resume_without_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", str(tmp_path / "data"), "--output", str(out), "--resume", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --resume: no checkpoint at")
    assert str(out / "checkpoint.pt") in err[0]


@requires_torch
def test_train_bad_widths_and_missing_data(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--widths", "8,x"]) == 2
    assert "--widths" in capsys.readouterr().err
    missing = str(tmp_path / "nope.csv")
    assert main(["train", missing, "--output", str(tmp_path / "run"), "--no-progress", "--workers", "0"]) == 2
    assert "nope.csv" in capsys.readouterr().err


@requires_torch
def test_train_teacher_flip_needs_a_teacher(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--teacher-flip", "--no-progress"]) == 2
    assert "--teacher-flip needs --teacher" in capsys.readouterr().err


@requires_torch
def test_train_teacher_sees_clean_needs_a_teacher_and_occluder_top_a_range(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--teacher-sees-clean", "--no-progress"]) == 2
    assert "--teacher-sees-clean needs --teacher" in capsys.readouterr().err
    for bad in ("0.6", "0.6,0.4", "a,b", "0.5,1.2"):
        assert main(["train", str(tmp_path), "--occluder-top", bad, "--no-progress"]) == 2
        assert "--occluder-top" in capsys.readouterr().err
