"""The results store: typed rows, atomic writes, partial blocks, concurrent runs, kill/resume, refusing
foreign databases, and the migration of stores written by schema 1."""

import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shiftlab.core.errors import UserError
from shiftlab.core.identity import (
    AttackPoint,
    CalibrationCell,
    CleanCell,
    CorruptionCell,
    DatasetIdentity,
    OODPair,
    Summary,
)
from shiftlab.store import ResultKey, Store
from shiftlab.store.schema import APPLICATION_ID, SCHEMA_VERSION

HERE = Path(__file__).parent
DS = DatasetIdentity("fashion-mnist", "test", 200, "ab" * 32, 200)


def key(identity=None, seed=0, dataset=DS):
    return ResultKey("fp", dataset, identity or CleanCell(), seed)


def model(store, fp="fp"):
    store.upsert_model(fp, name="m", arch="small-cnn", dataset="ds", recipe="erm", num_params=10, card={"a": 1},
                       checkpoint_path="/x")
    store.register_dataset(DS, "test")


def write(store, k, **metrics):
    return store.write_task(k, params={"k": k.task.key()}, metrics=metrics, artifacts={"curve": [1, 2]},
                            run_id="r1", started_at=1.0, duration_s=0.5)


def test_write_read_and_skip(tmp_path):
    with Store(tmp_path / "r.db") as store:
        model(store)
        assert write(store, key(), accuracy=0.5, ece=float("nan"))
        assert store.has_task(key()) and not store.has_task(key(seed=1))
        [row] = store.tasks("fp")
        assert row.id == key() and row.suite == "clean"
        assert row.metrics["accuracy"] == 0.5 and math.isnan(row.metrics["ece"])
        assert list(row.metrics) == ["accuracy", "ece"]  # written order
        assert row.artifacts == {"curve": [1, 2]} and row.params == {"k": "clean"}
        assert isinstance(row.metrics["accuracy"], float)  # numbers stored as numbers
        assert not write(store, key(), accuracy=0.7)  # the same identity twice: the first row stays, no error
        assert [r.metrics["accuracy"] for r in store.tasks("fp")] == [0.5]
        assert store.models()[0].num_params == 10
    with Store(tmp_path / "r.db") as again:
        assert again.tasks("fp")[0].metrics["accuracy"] == 0.5
        assert again.db.run("PRAGMA journal_mode")[0][0] == "wal"
        assert again.db.run("PRAGMA application_id")[0][0] == APPLICATION_ID


def test_structured_columns_come_from_the_identity(tmp_path):
    cells = [CorruptionCell("fog", 3, "imagenet"), AttackPoint("apgd-ce", "linf", 8 / 255),
             OODPair("image-folder:/data/x y", "knn"), CalibrationCell("fog", 5, "cifar"), Summary("corruptions", "tiny")]
    with Store(tmp_path / "r.db") as store:
        model(store)
        for cell in cells:
            write(store, key(cell), accuracy=1.0)
        got = [r.id.task for r in store.tasks()]
        assert got == cells  # typed values round-trip through the store, eps exactly
        cols = store.db.run("SELECT kind, suite, subject, severity, table_name, norm, eps, is_summary FROM tasks "
                            "ORDER BY id")
    assert cols[0] == ("corruption", "corruptions", "fog", 3, "imagenet", None, None, 0)
    assert cols[1] == ("attack", "adversarial", "apgd-ce", None, None, "linf", 8 / 255, 0)
    assert cols[4][:2] == ("summary", "corruptions") and cols[4][4] == "tiny" and cols[4][7] == 1


def test_same_dataset_name_with_other_content_never_shares_rows(tmp_path):
    other = DatasetIdentity("fashion-mnist", "test", 200, "cd" * 32, 200)
    with Store(tmp_path / "r.db") as store:
        model(store)
        write(store, key(), accuracy=1.0)
        assert not store.has_task(key(dataset=other))


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with Store(tmp_path / "r.db") as store:
        model(store)
        with pytest.raises(TypeError):
            store.write_task(key(), params={}, metrics={"x": 1.0}, artifacts={"not json": object()}, run_id="r",
                             started_at=0, duration_s=0)
        assert store.tasks("fp") == []


def test_blocks_are_kept_until_the_task_is_written(tmp_path):
    with Store(tmp_path / "r.db") as store:
        model(store)
        k = key(AttackPoint("apgd-ce", "linf", 0.1))
        store.save_batch(k, 0, {"robust": [1, 0]})
        store.save_batch(k, 1, {"robust": [1]})
        assert store.load_batches(k) == {0: {"robust": [1, 0]}, 1: {"robust": [1]}}
        write(store, k, x=1.0)
        assert store.load_batches(k) == {}


def test_claims_let_one_run_compute_and_take_over_from_a_dead_one(tmp_path):
    with Store(tmp_path / "r.db") as a, Store(tmp_path / "r.db") as b:
        model(a)
        k = key()
        assert a.claim(k, "run-a") and a.claim(k, "run-a")
        assert not b.claim(k, "run-b")  # a live run holds it
        a.db.run("UPDATE claims SET pid = 999999999")  # that run died (no such process here)
        assert b.claim(k, "run-b")
        write(b, k, accuracy=1.0)  # writing drops the claim
        assert a.db.run("SELECT COUNT(*) FROM claims")[0][0] == 0


def test_foreign_databases_and_junk_are_refused_untouched(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a shiftlab results store"):
        Store(tmp_path / "junk.db")
    with pytest.raises(UserError, match="is a directory"):
        Store(tmp_path)
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(UserError, match="another application"):
        Store(other)
    assert other.read_bytes() == before
    with pytest.raises(UserError, match="no results store"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_a_store_another_process_is_creating_is_waited_for_not_refused(tmp_path):
    """Two runs starting on one new store: the second used to see the first's empty, uncommitted file and
    call it another application's database."""
    path = tmp_path / "s.db"
    creator = sqlite3.connect(path, isolation_level=None)
    creator.execute("PRAGMA journal_mode=WAL")
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")  # not committed yet
    assert path.stat().st_size > 0
    opened: list[object] = []
    thread = threading.Thread(target=lambda: opened.append(_open_or_error(path)))
    thread.start()
    time.sleep(0.3)
    creator.execute("ROLLBACK")
    creator.close()
    thread.join(timeout=60)
    assert opened and not isinstance(opened[0], Exception), opened
    with Store(path) as store:
        assert store.db.run("PRAGMA application_id")[0][0] == APPLICATION_ID


def _open_or_error(path: Path) -> object:
    try:
        with Store(path) as store:
            return store.db.run("PRAGMA user_version")[0][0]
    except Exception as exc:  # noqa: BLE001 - handed to the main thread
        return exc


def test_a_schema_1_store_is_migrated_keeping_every_row(tmp_path):
    """tests/data/store-v1.db was written by shiftlab 0.1.0 (schema 1): clean, corruption cells of the
    default and the imagenet table, calibration (whose schema-1 keys omitted the table), adversarial
    points including 8/255 and the large-eps sanity run, OOD pairs and summaries of two models."""
    path = tmp_path / "v1.db"
    shutil.copyfile(HERE / "data" / "store-v1.db", path)
    old = sqlite3.connect(path)
    n_tasks, n_results, n_artifacts = (old.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                                       for t in ("tasks", "results", "artifacts"))
    old_acc = dict(old.execute("SELECT t.task_key || '#' || t.model_fingerprint, r.value FROM tasks t JOIN results r "
                               "ON r.task_id = t.id WHERE r.metric = 'accuracy'").fetchall())
    old.close()
    with Store(path) as store:
        rows = store.tasks()
        assert store.db.run("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert len(rows) == n_tasks
        assert sum(len(r.metrics) for r in rows) == n_results
        assert sum(len(r.artifacts) for r in rows) == n_artifacts
    cells = {r.id.task for r in rows}
    assert CorruptionCell("gaussian_noise", 3, "imagenet") in cells
    assert CorruptionCell("fog", 5, "cifar") in cells
    assert CalibrationCell("gaussian_noise", 3, "imagenet") in cells  # the table came from the row's params
    assert CalibrationCell("fog", 1, "cifar") in cells and CalibrationCell() in cells
    assert AttackPoint("fgsm", "linf", 8 / 255) in cells
    assert AttackPoint("apgd-ce", "linf", 1.0, (("steps", 20),)) in cells
    assert OODPair("uniform-noise", "knn") in cells
    assert {Summary("corruptions", "imagenet"), Summary("adversarial"), Summary("ood")} <= cells
    assert all(r.id.dataset.label == "fashion-mnist[:40]" and r.id.dataset.content == "" for r in rows)
    migrated = {(r.id.fingerprint, r.id.task): r.metrics["accuracy"] for r in rows if "accuracy" in r.metrics}
    fp = rows[0].id.fingerprint
    assert migrated[(fp, CorruptionCell("gaussian_noise", 3, "imagenet"))] == \
        old_acc["corruptions/gaussian_noise/3@imagenet#" + fp]
    assert sorted(migrated.values()) == sorted(old_acc.values())


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
                with Store(db, create=False) as s:
                    done_before_kill = len(s.tasks(with_artifacts=False))
            except Exception:  # noqa: BLE001 - store may be mid-creation
                continue
            if done_before_kill >= 2:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the evaluation finished before it could be killed"
    with Store(db) as s:
        kept = {r.id.task.key(): r.run_id for r in s.tasks(with_artifacts=False)}
    assert 2 <= len(kept) < 8

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    ran = [k for k in out.split("RAN ", 1)[1].splitlines()[0].split(",") if k]
    skipped = [k for k in out.split("SKIPPED ", 1)[1].splitlines()[0].split(",") if k]
    assert sorted(skipped) == sorted(kept)
    assert sorted(ran + skipped) == sorted(f"darken/{k}" for k in range(8))
    with Store(db) as s:
        rows = s.tasks(with_artifacts=False)
    assert len(rows) == 8
    assert all(r.run_id == kept[r.id.task.key()] for r in rows if r.id.task.key() in kept)  # untouched
    accs = [r.metrics["accuracy"] for r in sorted(rows, key=lambda r: int(r.id.task.key().split("/")[1]))]
    assert accs[0] > accs[-1]  # real work: darker images are harder
