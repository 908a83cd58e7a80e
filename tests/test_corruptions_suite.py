"""The corruptions suite (mCE protocol of Hendrycks & Dietterich 2019), `shiftlab corrupt` and the
corrupted-files reader, on real Fashion-MNIST with the trained small-cnn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CleanCell, CorruptionCell, Summary
from shiftlab.core.seeding import make_generator
from shiftlab.data import load_dataset
from shiftlab.data.corrupted_files import TRUNCATE_GUARD
from shiftlab.evaluation.corrupted import corrupt_block
from shiftlab.models import load_model
from shiftlab.shifts import SHIFTS, resolve_table
from shiftlab.store import Store

pytestmark = pytest.mark.usefixtures("single_thread")


def test_suite_tasks_summary_and_mce(tmp_path, fmnist_checkpoint):
    from conftest import trained_checkpoint

    baseline = trained_checkpoint("small-cnn-erm-tiny-corruptions", epochs=1, train_limit=2000)
    names = ("gaussian_noise", "contrast", "fog")
    options = {"corruptions": names, "severities": (1, 5), "baseline": baseline}
    store = tmp_path / "s.db"
    report = evaluate_model(fmnist_checkpoint, ["clean", "corruptions"], store=store, options=options, seed=3,
                            limit=200, batch_size=100, device="cpu")
    assert sorted(report.ran) == sorted(["clean", *(f"{n} s{s} (cifar)" for n in names for s in (1, 5))])
    rows = {r.id.task: r for r in report.rows}
    row = rows[CorruptionCell("fog", 5, "cifar")]
    assert row.params == {"corruption": "fog", "family": "weather", "severity": 5, "table": "cifar", "seed": 3}
    # the task's accuracy is the model's accuracy on exactly these corrupted images: the 200 images are
    # one block (256 28-px images per block), drawn from the generator of (seed, cell identity, block 0)
    model, _ = load_model(fmnist_checkpoint)
    x, y = load_dataset("fashion-mnist", "test", limit=200).get_batch(torch.arange(200))
    xc = SHIFTS.get("fog")(x, 5, make_generator(3, "corruption/fog/5/cifar", "block", 0), "cifar")
    with torch.inference_mode():
        correct = int((model(xc).argmax(1) == y).sum())
    assert row.metrics["accuracy"] == pytest.approx(correct / 200)
    assert rows[CorruptionCell("gaussian_noise", 5, "cifar")].metrics["accuracy"] < rows[CleanCell()].metrics["accuracy"]

    summary = rows[Summary("corruptions", "cifar")]
    per = summary.artifacts["per_corruption"]
    assert set(per) == set(names) and per["fog"]["family"] == "weather"
    e = {n: per[n]["errors"] for n in per}
    assert summary.metrics["mean_corruption_error"] == pytest.approx(np.mean([v for n in e for v in e[n]]))
    with Store(store) as db:  # the baseline was evaluated first, on the same data and seed
        base_rows = {r.id.task: r for r in db.tasks(summary.artifacts["baseline"]["fingerprint"],
                                                    dataset=row.id.dataset, suite="corruptions", seed=3)}
    for n in e:
        be = [base_rows[CorruptionCell(n, s, "cifar")].metrics["error"] for s in (1, 5)]
        assert summary.metrics[f"ce/{n}"] == pytest.approx(sum(e[n]) / sum(be))
        ec, bc = summary.metrics["clean_error"], summary.metrics["baseline_clean_error"]
        assert summary.metrics[f"relative_ce/{n}"] == pytest.approx(sum(v - ec for v in e[n]) / sum(v - bc for v in be))
    assert "mean_ce" not in summary.metrics  # only 3 of the 15 benchmark corruptions
    protocol = summary.artifacts["protocol"]
    assert protocol["table"] == "cifar" and protocol["severities"] == [1, 5] and protocol["seed"] == 3
    assert "CE_c" in protocol["normalisation"] and protocol["default_table"]
    again = evaluate_model(fmnist_checkpoint, ["clean", "corruptions"], store=store, options=options, seed=3,
                           limit=200, batch_size=100, device="cpu")
    assert again.ran == []  # rerun: nothing recomputed


@pytest.mark.parametrize("options", [{"corruptions": "fogg"}, {"severities": "0"}, {"severities": "6"},
                                     {"severities": "x"}, {"params": "mnist"}, {"baseline": "/no/such/model"}])
def test_suite_rejects_bad_options_before_any_work(tmp_path, fmnist_checkpoint, options):
    with pytest.raises(UserError):
        evaluate_model(fmnist_checkpoint, ["corruptions"], store=tmp_path / "s.db", options=options, limit=10,
                       device="cpu")
    assert not (tmp_path / "s.db").exists()  # nothing created before the inputs were validated


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
        cell = CorruptionCell(name, severity, resolve_table(None, 28, 28))
        expected = torch.floor(corrupt_block(cell, x, 4, 0) * 255 + TRUNCATE_GUARD)  # truncated, as the reference's
        assert torch.equal(xc * 255, expected)
        assert torch.equal(yc, y) and ds.info.num_classes == 10
    with pytest.raises(UserError):
        load_dataset("corrupted-files", "test", root=out, extra={"corruption": "fog"})
    with pytest.raises(UserError):
        load_dataset("corrupted-files", "test", root=out, extra={"corruption": "contrast", "severity": "7"})
    bad = CliRunner().invoke(app, ["corrupt", "--dataset", "fashion-mnist", "--out", str(out), "--severities", "9"])
    assert bad.exit_code == 2
    bad = CliRunner().invoke(app, ["corrupt", "--dataset", "fashion-mnist", "--out", str(tmp_path / "q"),
                                   "--quantize", "nearest"])
    assert bad.exit_code == 2 and "quantisation" in bad.output and not (tmp_path / "q").exists()
