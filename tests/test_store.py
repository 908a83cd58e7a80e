import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shiftlab.errors import UserError
from shiftlab.store import Store, TaskId

HERE = Path(__file__).parent


def _write(store, key, **metrics):
    store.write_task(TaskId("fp", "ds", key, 0), suite="s", params={"k": key}, metrics=metrics,
                     artifacts={"curve": [1, 2]}, run_id="r1", started_at=1.0, duration_s=0.5)


def test_write_read_and_skip(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.upsert_model("fp", name="m", arch="small-cnn", dataset="ds", recipe="erm", num_params=10,
                           card={"a": 1}, checkpoint_path="/x")
        _write(store, "a", accuracy=0.5, ece=float("nan"))
        assert store.has_task(TaskId("fp", "ds", "a", 0))
        assert not store.has_task(TaskId("fp", "ds", "a", 1))
        [row] = store.tasks("fp")
        assert row.metrics["accuracy"] == 0.5 and math.isnan(row.metrics["ece"])
        assert row.artifacts == {"curve": [1, 2]} and row.params == {"k": "a"}
        assert isinstance(row.metrics["accuracy"], float)  # numbers stored as numbers
        with pytest.raises(sqlite3.IntegrityError):  # the same key twice is refused, not duplicated
            _write(store, "a", accuracy=0.7)
        assert len(store.tasks("fp")) == 1
        assert store.models()[0].num_params == 10
    with Store(tmp_path / "r.db") as again:
        assert again.tasks("fp")[0].metrics["accuracy"] == 0.5
        assert again._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.upsert_model("fp", name="m", arch="a", dataset="ds", recipe="", num_params=1, card={}, checkpoint_path="")
        with pytest.raises(TypeError):
            store.write_task(TaskId("fp", "ds", "bad", 0), suite="s", params={}, metrics={"x": 1.0},
                             artifacts={"not json": object()}, run_id="r", started_at=0, duration_s=0)
        assert store.tasks("fp") == []


def test_batches_are_kept_until_the_task_is_written(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.upsert_model("fp", name="m", arch="a", dataset="ds", recipe="", num_params=1, card={}, checkpoint_path="")
        tid = TaskId("fp", "ds", "long", 0)
        store.save_batch(tid, 0, {"robust": [1, 0]})
        store.save_batch(tid, 1, {"robust": [1]})
        assert store.load_batches(tid) == {0: {"robust": [1, 0]}, 1: {"robust": [1]}}
        store.write_task(tid, suite="s", params={}, metrics={"x": 1.0}, run_id="r", started_at=0, duration_s=0)
        assert store.load_batches(tid) == {}


def test_not_a_store_is_a_user_error(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a shiftlab results store"):
        Store(tmp_path / "junk.db")
    with pytest.raises(UserError, match="is a directory"):
        Store(tmp_path)


def test_sigkill_midway_keeps_finished_tasks_and_rerun_does_only_the_rest(tmp_path, fmnist_checkpoint):
    db = tmp_path / "kill.db"
    cmd = [sys.executable, str(HERE / "kill_resume_script.py"), str(fmnist_checkpoint), str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.time() + 240
    done_before_kill = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with Store(db) as s:
                    done_before_kill = len(s.tasks(with_artifacts=False))
            except Exception:  # noqa: BLE001 - store may be mid-creation
                continue
            if done_before_kill >= 2:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the evaluation finished before it could be killed"
    with Store(db) as s:
        kept = {r.id.task_key: r.run_id for r in s.tasks(with_artifacts=False)}
    assert 2 <= len(kept) < 8

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    ran = [k for k in out.split("RAN ", 1)[1].splitlines()[0].split(",") if k]
    skipped = [k for k in out.split("SKIPPED ", 1)[1].splitlines()[0].split(",") if k]
    assert sorted(skipped) == sorted(kept)
    assert sorted(ran + skipped) == sorted(f"darken/{k}" for k in range(8))
    with Store(db) as s:
        rows = s.tasks(with_artifacts=False)
    assert len(rows) == 8
    assert all(r.run_id == kept[r.id.task_key] for r in rows if r.id.task_key in kept)  # untouched
    accs = [r.metrics["accuracy"] for r in sorted(rows, key=lambda r: int(r.id.task_key.split("/")[1]))]
    assert accs[0] > accs[-1]  # real work: darker images are harder
