"""Issue 19: the evaluation grid on every executor gives the same rows, resumes from the store, and a
killed worker loses no finished task; failed jobs are retried a bounded number of times and reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grid_jobs import always_fails, flaky

from shiftlab.app.grid import EvalJob, run_grid
from shiftlab.evaluation.executors import RayExecutor
from shiftlab.store import Store

OPTIONS = {"corruptions": "fog,shot_noise", "severities": "5"}


def grid(limit=64):
    return [EvalJob(model, (suite,), OPTIONS, limit=limit, device="cpu")
            for model in ("zoo:erm", "zoo:pgd-at") for suite in ("clean", "corruptions")]


def stored(path: Path) -> dict:
    with Store(path) as db:
        names = {m.fingerprint: m.name for m in db.models()}
        return {(names[r.id.fingerprint], r.id.task): {k: v for k, v in r.metrics.items() if k != "seconds"}
                for r in db.tasks()}


@pytest.fixture(scope="module")
def ray_session():
    import ray

    if not ray.is_initialized():  # workers can import the tests' job functions
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    yield
    ray.shutdown()


def test_every_executor_gives_the_same_rows_and_resumes(tmp_path, ray_session):
    rows = {}
    for executor in ("local", "processes", "ray"):
        path = tmp_path / f"{executor}.db"
        outcomes = run_grid(grid(), path, executor, workers=2)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        assert sum(len(o.result) for o in outcomes) == 2 * (1 + 2)  # per model: clean and two corruption cells
        again = run_grid(grid(), path, executor, workers=2)
        assert all(o.ok and not o.result for o in again), "a rerun computes nothing"
        rows[executor] = stored(path)
    assert rows["local"] == rows["processes"] == rows["ray"]
    assert len(rows["ray"]) == 8


def test_ray_retries_failed_jobs_a_bounded_number_of_times_and_reports_them(tmp_path, ray_session):
    executor = RayExecutor(workers=2, retries=1)
    [ok] = executor.map(flaky, [str(tmp_path / "marker")])
    assert ok.ok and ok.result == "ok"
    [failed] = executor.map(always_fails, [None])
    assert not failed.ok and "this job cannot run" in failed.error


def test_a_killed_grid_loses_no_finished_task_and_the_rerun_does_only_the_rest(tmp_path, fmnist_checkpoint):
    store = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "shiftlab", "evaluate", "--model", str(fmnist_checkpoint), "--store", str(store),
           "--suite", "corruptions", "--suite", "calibration", "--severities", "5", "--limit", "1000",
           "--executor", "processes", "--jobs", "2", "--device", "cpu", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    kept: dict = {}
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if store.exists():
            try:
                with Store(store, create=False) as db:
                    kept = {r.id.task.key(): r.run_id for r in db.tasks(summaries=False, with_artifacts=False)}
            except Exception:  # noqa: BLE001 - the store may be mid-creation
                continue
            if len(kept) >= 4:
                os.killpg(proc.pid, signal.SIGKILL)  # the driver and both workers
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the grid finished before it could be killed"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    with Store(store) as db:
        rows = db.tasks(summaries=False, with_artifacts=False)
    # 19 corruption cells, calibration on the 15 benchmark corruptions, and the clean calibration cell
    assert len(rows) == 19 + 15 + 1
    assert all(r.run_id == kept[r.id.task.key()] for r in rows if r.id.task.key() in kept)  # untouched
    assert len(report["skipped"]) >= len(kept)
