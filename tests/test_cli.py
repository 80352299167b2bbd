"""The ``clf`` entry point: usage, unknown commands, per-command help."""

from __future__ import annotations

from helpers import one_line_error, run_clf

from clf import __version__


def test_no_arguments_prints_usage():
    result = run_clf()
    assert result.returncode == 0
    assert result.stdout.startswith("usage: clf <command>")
    assert "train" in result.stdout


def test_help_flag_prints_usage():
    result = run_clf("--help")
    assert result.returncode == 0
    assert "usage: clf <command>" in result.stdout


def test_version():
    result = run_clf("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_unknown_command_exits_2():
    result = run_clf("no-such-command")
    assert result.returncode == 2
    assert "unknown command 'no-such-command'" in result.stderr
    assert "usage: clf <command>" in result.stderr
    assert result.stdout == ""


def test_train_help(tmp_path):
    result = run_clf("train", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "usage: clf train" in result.stdout
    assert "--cfg" in result.stdout and "overrides" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no run dir, no logs


def test_train_unknown_option_exits_2(tmp_path):
    result = run_clf("train", "--no-such-option", cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_errors_are_one_line(tmp_path):
    result = run_clf("train", "data=csv", cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == "clf train: error: data=csv needs data.train=PATH"
