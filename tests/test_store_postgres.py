"""Issue 19: the store on a real PostgreSQL server, selected by URL, behaves as the SQLite store does."""

from __future__ import annotations

import pytest
from postgres_server import postgres_url

from shiftlab.core.errors import UserError
from shiftlab.core.identity import AttackPoint, CleanCell, CorruptionCell, DatasetIdentity, Summary
from shiftlab.store import ResultKey, Store

DS = DatasetIdentity("fashion-mnist", "test", 200, "ab" * 32, 200)


@pytest.fixture(scope="module")
def pg_url():
    with postgres_url() as url:
        yield url


def test_rows_claims_and_blocks_round_trip(pg_url):
    with Store(pg_url) as store:
        store.upsert_model("fp", name="m", arch="small-cnn", dataset="ds", recipe="erm", num_params=10, card={},
                           checkpoint_path="zoo:erm")
        store.register_dataset(DS, "test")
        cells = [CleanCell(), CorruptionCell("fog", 3, "imagenet"), AttackPoint("apgd-ce", "linf", 8 / 255),
                 Summary("corruptions", "cifar")]
        for cell in cells:
            assert store.write_task(ResultKey("fp", DS, cell, 0), params={"p": 1}, metrics={"accuracy": 0.5, "n": 200.0,
                                    "ece": float("nan")}, artifacts={"a": [1]}, run_id="r", started_at=1.0,
                                    duration_s=0.1)
        assert not store.write_task(ResultKey("fp", DS, CleanCell(), 0), params={}, metrics={"accuracy": 0.9},
                                    run_id="r2", started_at=2.0, duration_s=0.1)
        rows = store.tasks("fp")
        assert [r.id.task for r in rows] == cells and list(rows[0].metrics) == ["accuracy", "n", "ece"]
        assert rows[0].metrics["accuracy"] == 0.5 and rows[0].artifacts == {"a": [1]}
        assert [r.id.task for r in store.tasks(summaries=True)] == [Summary("corruptions", "cifar")]
        k = ResultKey("fp", DS, AttackPoint("apgd-ce", "l2", 0.5), 0)
        assert store.claim(k, "run-a") and not store.claim(k, "run-b")
        store.save_batch(k, 0, {"robust": [1]})
        store.save_batch(k, 0, {"robust": [0]})
        assert store.load_batches(k) == {0: {"robust": [0]}}
        assert store.models()[0].checkpoint_path == "zoo:erm"
    with Store(pg_url, create=False) as again:  # reopens the existing store
        assert len(again.tasks()) == 4


def test_an_evaluation_and_its_report_run_on_postgresql(pg_url, fmnist_checkpoint, tmp_path):
    from shiftlab.app.evaluate import evaluate_model
    from shiftlab.report import write_report

    first = evaluate_model(fmnist_checkpoint, ["clean", "corruptions"], store=pg_url, limit=64, device="cpu",
                           options={"corruptions": "fog", "severities": "5"})
    again = evaluate_model(fmnist_checkpoint, ["clean", "corruptions"], store=pg_url, limit=64, device="cpu",
                           options={"corruptions": "fog", "severities": "5"})
    assert first.ran and not again.ran and again.skipped == first.ran
    with Store(pg_url) as store:
        index = write_report(store, tmp_path / "report")
    assert "small-cnn" in index.read_text()


def test_a_database_with_other_tables_is_refused(pg_url):
    import psycopg

    other = pg_url.replace("/postgres?", "/template1?")
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS people (name TEXT)")
    try:
        with pytest.raises(UserError, match="holds other tables"):
            Store(other)
    finally:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute("DROP TABLE people")
