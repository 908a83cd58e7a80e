import json
import os
import subprocess
import sys

import pytest

SHIFTLAB = [sys.executable, "-m", "shiftlab.cli"]


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
    assert set(row["metrics"]) >= {"accuracy", "nll", "brier", "ece"}
    second = run("evaluate", "--model", str(fmnist_checkpoint), "--store", str(store), "--limit", "300")
    assert second.returncode == 0 and "reused 1" in second.stdout
    assert "clean" in second.stdout and "accuracy" in second.stdout


def test_list_suites_and_models():
    proc = run("list", "models")
    assert proc.returncode == 0 and "small-cnn" in proc.stdout and "wrn-28-10" in proc.stdout
    assert "clean" in run("list", "suites").stdout
