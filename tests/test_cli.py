"""The command line and the Python API as a user meets them: every README example, one-line errors,
store reuse, the lint configuration."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SHIFTLAB = [sys.executable, "-m", "shiftlab"]
REPO = Path(__file__).resolve().parents[1]


def run(*args, **kw):
    return subprocess.run([*SHIFTLAB, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"}, **kw)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["evaluate", "--model", "/nonexistent/ckpt"], "does not exist"),
        (["train", "--model", "no-such-net", "--epochs", "1"], "unknown model"),
        (["train", "--dataset", "mnist-x", "--epochs", "1"], "unknown dataset"),
        (["train", "--epochs", "0"], "--epochs"),
        (["evaluate", "--model", "x", "--limit", "abc"], "--limit"),
        (["evaluate", "--bogus"], "No such option"),
        (["list", "widgets"], "unknown family"),
        (["train", "--recipe", "erm", "--recipe-arg", "novalue", "--epochs", "1"], "key=value"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(args, needle):
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_writes_the_store_and_reuses_it(tmp_path, fmnist_checkpoint):
    store = tmp_path / "r.db"
    first = run("evaluate", "--model", str(fmnist_checkpoint), "--store", str(store), "--limit", "300", "--json")
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert payload["ran"] == ["clean"] and payload["skipped"] == []
    [row] = payload["results"]
    assert row["dataset"] == "fashion-mnist[:300]" and 0.7 < row["metrics"]["accuracy"] <= 1.0
    assert len(row["dataset_content"]) == 64
    assert set(row["metrics"]) >= {"accuracy", "nll", "brier", "ece"}
    second = run("evaluate", "--model", str(fmnist_checkpoint), "--store", str(store), "--limit", "300")
    assert second.returncode == 0 and "reused 1" in second.stdout
    assert "clean" in second.stdout and "accuracy" in second.stdout
    assert re.search(r"\b300\b", second.stdout) and "300.0000" not in second.stdout  # counts are integers


def test_list_suites_models_and_attacks():
    proc = run("list", "models")
    assert proc.returncode == 0 and "small-cnn" in proc.stdout and "wrn-28-10" in proc.stdout
    assert "clean" in run("list", "suites").stdout
    attacks = run("list", "attacks").stdout
    assert "apgd-ce" in attacks and "autoattack-standard" in attacks  # ensembles are listed too


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_every_readme_python_example_runs_twice_in_one_process(tmp_path, monkeypatch):
    """Issue 13, defect 1: the second ``shiftlab.evaluate(...)`` in a process used to call a module."""
    blocks = readme_python_blocks()
    assert blocks, "the README has Python examples"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        for _ in range(2):
            namespace: dict = {}
            exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    import shiftlab

    assert callable(shiftlab.evaluate) and callable(shiftlab.train)
    import shiftlab.evaluation  # noqa: F401  (importing the packages never shadows the functions)
    import shiftlab.training  # noqa: F401

    assert callable(shiftlab.evaluate) and callable(shiftlab.train)


def test_every_readme_shell_command_and_option_exists():
    """Every `shiftlab ...` line of the README names a real command, and each of its options is in that
    command's --help."""
    from typer.testing import CliRunner

    from shiftlab.cli import app

    runner = CliRunner()
    lines = re.findall(r"^shiftlab (.*)$", (REPO / "README.md").read_text(), flags=re.M)
    assert len(lines) >= 10
    for line in lines:
        words = line.split("#")[0].split()
        command = words[:2] if words[0] == "zoo" else words[:1]
        result = runner.invoke(app, [*command, "--help"], terminal_width=200)
        assert result.exit_code == 0, (line, result.output)
        for flag in re.findall(r"(--[a-z][a-z-]+)", line.split("#")[0]):
            assert flag in result.output, (line, flag)


def test_lint_configuration_names_only_files_that_exist():
    """Issue 13, defect 5: `make lint` named shiftlab/config.py, which does not exist."""
    for source in (REPO / "Makefile", REPO / "pyproject.toml"):
        for path in re.findall(r"\b(shiftlab/[\w/]+(?:\.py)?)", source.read_text()):
            assert (REPO / path).exists(), f"{source.name} names {path}, which does not exist"
    make = (REPO / "Makefile").read_text()
    assert "lint-imports" in make and re.search(r"^test: .*lint", make, flags=re.M)
