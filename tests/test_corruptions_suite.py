"""The corruptions suite (mCE protocol of Hendrycks & Dietterich 2019), `shiftlab corrupt` and the
corrupted-files reader, on real Fashion-MNIST with the trained small-cnn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from shiftlab.data import load_dataset
from shiftlab.errors import UserError
from shiftlab.evaluate import SuiteOptions, make_context, run_suites
from shiftlab.shifts import SHIFTS
from shiftlab.store import Store

pytestmark = pytest.mark.usefixtures("single_thread")


def test_suite_tasks_summary_and_mce(tmp_path, fmnist_checkpoint):
    from conftest import trained_checkpoint

    baseline = trained_checkpoint("small-cnn-erm-tiny-corruptions", epochs=1, train_limit=2000)
    options = SuiteOptions(seed=3, limit=200, batch_size=100, corruptions=("gaussian_noise", "contrast", "fog"),
                           severities=(1, 5), baseline=baseline)
    with Store(tmp_path / "s.db") as store:
        ctx = make_context(fmnist_checkpoint, None, store, options)
        report = run_suites(ctx, ["corruptions"])
        assert sorted(report.ran) == sorted(f"corruptions/{n}/{s}" for n in options.corruptions for s in (1, 5))
        rows = {r.id.task_key: r for r in report.rows}
        row = rows["corruptions/fog/5"]
        assert row.params == {"corruption": "fog", "family": "weather", "severity": 5, "table": "cifar", "seed": 3}
        # the task's accuracy is the model's accuracy on exactly these corrupted batches
        ds = load_dataset("fashion-mnist", "test", limit=200)
        correct = 0
        for i in range(2):
            x, y = ds.get_batch(torch.arange(i * 100, (i + 1) * 100))
            xc = SHIFTS.get("fog")(x, 5, ctx.generator("corruptions/fog/5", i), "cifar")
            with torch.inference_mode():
                correct += int((ctx.model(xc).argmax(1) == y).sum())
        assert row.metrics["accuracy"] == pytest.approx(correct / 200)
        clean_acc = next(r for r in store.tasks(ctx.fingerprint, dataset=ctx.dataset_key, suite="clean")).metrics
        assert rows["corruptions/gaussian_noise/5"].metrics["accuracy"] < clean_acc["accuracy"]

        summary = rows["corruptions/summary"]
        per = summary.artifacts["per_corruption"]
        assert set(per) == {"gaussian_noise", "contrast", "fog"} and per["fog"]["family"] == "weather"
        e = {n: per[n]["errors"] for n in per}
        assert summary.metrics["mean_corruption_error"] == pytest.approx(np.mean([v for n in e for v in e[n]]))
        base_rows = {r.id.task_key: r for r in store.tasks(summary.artifacts["baseline"]["fingerprint"],
                                                           dataset=ctx.dataset_key, suite="corruptions")}
        for n in e:
            be = [base_rows[f"corruptions/{n}/{s}"].metrics["error"] for s in (1, 5)]
            assert summary.metrics[f"ce/{n}"] == pytest.approx(sum(e[n]) / sum(be))
            ec, bc = summary.metrics["clean_error"], summary.metrics["baseline_clean_error"]
            assert summary.metrics[f"relative_ce/{n}"] == pytest.approx(
                sum(v - ec for v in e[n]) / sum(v - bc for v in be))
        assert "mce" not in summary.metrics  # only 3 of the 15 benchmark corruptions
        protocol = summary.artifacts["protocol"]
        assert protocol["table"] == "cifar" and protocol["severities"] == [1, 5] and protocol["seed"] == 3
        assert "CE_c" in protocol["normalisation"]
        # rerun: nothing recomputed
        assert run_suites(ctx, ["corruptions"]).ran == []


def test_suite_rejects_bad_options(tmp_path, fmnist_checkpoint):
    with Store(tmp_path / "s.db") as store:
        for opts in (SuiteOptions(limit=10, corruptions=("fogg",)), SuiteOptions(limit=10, severities=(0,)),
                     SuiteOptions(limit=10, params="mnist")):
            ctx = make_context(fmnist_checkpoint, None, store, opts)
            with pytest.raises(UserError):
                run_suites(ctx, ["corruptions"])


def test_corrupt_cli_round_trip(tmp_path):
    from shiftlab.cli import app

    out = tmp_path / "fmnist-c"
    result = CliRunner().invoke(app, ["corrupt", "--dataset", "fashion-mnist", "--split", "test", "--out", str(out),
                                      "--limit", "30", "--corruptions", "contrast,shot_noise", "--seed", "4"])
    assert result.exit_code == 0, result.output
    arr = np.load(out / "shot_noise.npy")
    assert arr.dtype == np.uint8 and arr.shape == (150, 28, 28, 1)
    assert np.load(out / "labels.npy").shape == (150,)
    assert json.loads((out / "corrupt.json").read_text())["severities"] == [1, 2, 3, 4, 5]
    src = load_dataset("fashion-mnist", "test", limit=30)
    x, y = src.get_batch(torch.arange(30))
    for name, severity in (("contrast", 2), ("shot_noise", 4)):
        ds = load_dataset("corrupted-files", "test", root=out, extra={"corruption": name, "severity": str(severity)})
        xc, yc = ds.get_batch(torch.arange(30))
        from shiftlab.seeding import make_generator

        expected = torch.round(SHIFTS.get(name)(x, severity, make_generator(4, "corrupt", name, severity, 0)) * 255)
        assert torch.equal(xc * 255, expected)
        assert torch.equal(yc, y) and ds.info.num_classes == 10
    with pytest.raises(UserError):
        load_dataset("corrupted-files", "test", root=out, extra={"corruption": "fog"})
    with pytest.raises(UserError):
        load_dataset("corrupted-files", "test", root=out, extra={"corruption": "contrast", "severity": "7"})
    bad = CliRunner().invoke(app, ["corrupt", "--dataset", "fashion-mnist", "--out", str(out), "--severities", "9"])
    assert bad.exit_code == 2
