"""Calibration metrics and temperature scaling against direct NumPy / scikit-learn oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss

from shiftlab.calibrate import fit_temperature, nll_at_temperature
from shiftlab.metrics import (
    ECE,
    MCE,
    AdaptiveECE,
    BrierScore,
    ClasswiseECE,
    NegativeLogLikelihood,
    adaptive_calibration_error,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
)


def _logits(model, data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data.get_batch(torch.arange(n))
    with torch.no_grad():
        return model(x).double(), y


@pytest.fixture(scope="module")
def test_logits(fmnist_model, fmnist_test):
    return _logits(fmnist_model[0], fmnist_test, 2000)


@pytest.fixture(scope="module")
def val_logits(fmnist_model):
    from shiftlab.data import load_dataset

    return _logits(fmnist_model[0], load_dataset("fashion-mnist", "val"), 2000)


# --- direct NumPy implementations of the published definitions -------------------------------------

def np_binned_gaps(conf: np.ndarray, hit: np.ndarray, m: int) -> list[tuple[int, float]]:
    """(bin size, |acc - conf|) for each non-empty bin (b/M, (b+1)/M] (0 joins the first bin)."""
    edges = np.linspace(0.0, 1.0, m + 1)
    out = []
    for b in range(m):
        lo, hi = edges[b], edges[b + 1]
        mask = (conf > lo) & (conf <= hi) if b > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            out.append((int(mask.sum()), abs(hit[mask].mean() - conf[mask].mean())))
    return out


def np_ece(p: np.ndarray, y: np.ndarray, m: int) -> float:
    conf, hit = p.max(1), (p.argmax(1) == y).astype(float)
    return sum(size / len(y) * gap for size, gap in np_binned_gaps(conf, hit, m))


def np_mce(p: np.ndarray, y: np.ndarray, m: int) -> float:
    conf, hit = p.max(1), (p.argmax(1) == y).astype(float)
    return max(gap for _, gap in np_binned_gaps(conf, hit, m))


def np_classwise_ece(p: np.ndarray, y: np.ndarray, m: int) -> float:
    per_class = []
    for k in range(p.shape[1]):
        pk, yk = p[:, k], (y == k).astype(float)
        per_class.append(sum(size / len(y) * gap for size, gap in np_binned_gaps(pk, yk, m)))
    return float(np.mean(per_class))


def np_equal_mass_ece(conf: np.ndarray, hit: np.ndarray, m: int) -> float:
    order = np.argsort(conf, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, m):
        if len(chunk):
            total += len(chunk) / len(conf) * abs(hit[chunk].mean() - conf[chunk].mean())
    return total


# --- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_bins", [1, 10, 15, 30])
def test_ece_mce_classwise_match_numpy_definitions_on_real_logits(test_logits, n_bins):
    logits, y = test_logits
    p = logits.softmax(1)
    pn, yn = p.numpy(), y.numpy()
    assert expected_calibration_error(p, y, n_bins) == pytest.approx(np_ece(pn, yn, n_bins), abs=1e-12)
    assert maximum_calibration_error(p, y, n_bins) == pytest.approx(np_mce(pn, yn, n_bins), abs=1e-12)
    assert classwise_calibration_error(p, y, n_bins) == pytest.approx(np_classwise_ece(pn, yn, n_bins), abs=1e-12)
    conf, hit = pn.max(1), (pn.argmax(1) == yn).astype(float)
    assert adaptive_calibration_error(p, y, n_bins) == pytest.approx(np_equal_mass_ece(conf, hit, n_bins), abs=1e-12)


def test_equal_mass_bins_on_crafted_cases():
    # 6 samples, 3 bins of 2: sorted confidences (.1,.2 | .6,.7 | .9,.95), correct (0,1 | 1,0 | 1,1)
    conf = torch.tensor([0.9, 0.1, 0.6, 0.95, 0.2, 0.7], dtype=torch.float64)
    hit = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    from shiftlab.metrics.calibration import equal_mass_ece_from_scores

    expected = (2 / 6) * abs(0.5 - 0.15) + (2 / 6) * abs(0.5 - 0.65) + (2 / 6) * abs(1.0 - 0.925)
    assert equal_mass_ece_from_scores(conf, hit, 3) == pytest.approx(expected, abs=1e-12)
    # 7 samples, 3 bins -> sizes 3, 2, 2 (larger first, as numpy.array_split)
    conf7 = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], dtype=torch.float64)
    hit7 = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    expected7 = (3 / 7) * abs(1 / 3 - 0.2) + (2 / 7) * abs(1.0 - 0.45) + (2 / 7) * abs(0.5 - 0.65)
    assert equal_mass_ece_from_scores(conf7, hit7, 3) == pytest.approx(expected7, abs=1e-12)
    # more bins than samples: every sample its own bin -> mean |hit - conf|
    assert equal_mass_ece_from_scores(conf7, hit7, 50) == pytest.approx(float((hit7 - conf7).abs().mean()), abs=1e-12)
    # ties across a bin boundary are split by the stable sort order, not kept together
    tied = torch.full((4,), 0.8, dtype=torch.float64)
    hit4 = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    assert equal_mass_ece_from_scores(tied, hit4, 2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.8, abs=1e-12)
    assert equal_mass_ece_from_scores(tied, hit4, 1) == pytest.approx(0.3, abs=1e-12)


def test_streaming_and_merge_equal_one_shot(test_logits):
    logits, y = test_logits
    for cls, fn in ((ECE, expected_calibration_error), (MCE, maximum_calibration_error),
                    (AdaptiveECE, adaptive_calibration_error), (ClasswiseECE, classwise_calibration_error)):
        whole = fn(logits.softmax(1), y)
        streamed = cls()
        for chunk in range(0, 2000, 300):
            streamed.update(logits[chunk : chunk + 300], y[chunk : chunk + 300])
        assert streamed.compute() == pytest.approx(whole, abs=1e-12), cls.__name__
        a, b, empty = cls(), cls(), cls()
        a.update(logits[:700], y[:700])
        b.update(logits[700:], y[700:])
        assert empty.merge(a).merge(b).compute() == pytest.approx(whole, abs=1e-12), cls.__name__


def test_fixed_size_states():
    ece, cw = ECE(15), ClasswiseECE(15)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        logits, y = torch.randn(500, 10, generator=g), torch.randint(0, 10, (500,), generator=g)
        ece.update(logits, y)
        cw.update(logits, y)
    assert ece.count.shape == (15,) and cw.count.shape == (10, 15)
    assert ece.count.sum() == 1500 and cw.count.sum() == 1500 * 10


def test_reliability_data_consistent(test_logits):
    logits, y = test_logits
    ece = ECE()
    ece.update(logits, y)
    rel = ece.reliability()
    count = np.array(rel["count"])
    assert count.sum() == len(y) and len(rel["bin_lower"]) == 15
    gap = np.abs(np.array(rel["accuracy"]) - np.array(rel["confidence"]))
    assert float((count / count.sum() * gap).sum()) == pytest.approx(ece.compute(), abs=1e-12)


def test_nll_matches_sklearn_and_brier_matches_formula(test_logits):
    logits, y = test_logits
    nll, brier = NegativeLogLikelihood(), BrierScore()
    nll.update(logits, y)
    brier.update(logits, y)
    p = logits.softmax(1).numpy()
    assert nll.compute() == pytest.approx(log_loss(y.numpy(), p, labels=list(range(10))), rel=1e-9)
    onehot = np.eye(10)[y.numpy()]
    assert brier.compute() == pytest.approx(float(((p - onehot) ** 2).sum(1).mean()), rel=1e-12)


def test_temperature_scaling_lowers_val_nll_and_matches_scipy(val_logits, test_logits):
    logits, y = val_logits
    # an over-confident copy of the model: the fit must find T > 1 and undo it
    for scale in (1.0, 3.0):
        fit = fit_temperature(logits * scale, y)
        oracle = minimize_scalar(lambda lt, s=scale: nll_at_temperature(logits * s, y, float(np.exp(lt))),
                                 bounds=(np.log(0.05), np.log(50.0)), method="bounded", options={"xatol": 1e-9})
        assert fit.temperature == pytest.approx(float(np.exp(oracle.x)), rel=1e-4)
        assert fit.nll_after <= fit.nll_before + 1e-12
        assert fit.nll_after == pytest.approx(nll_at_temperature(logits * scale, y, fit.temperature))
    t1, t3 = fit_temperature(logits, y).temperature, fit_temperature(logits * 3, y).temperature
    assert t3 == pytest.approx(3 * t1, rel=1e-4)
    assert fit_temperature(logits * 3, y).nll_after < fit_temperature(logits * 3, y).nll_before - 0.01
    # the fitted temperature keeps the predictions and transfers to the test split
    tl, ty = test_logits
    fit = fit_temperature(logits * 3, y)
    assert torch.equal(fit.apply(tl * 3).argmax(1), tl.argmax(1))
    assert nll_at_temperature(tl * 3, ty, fit.temperature) < nll_at_temperature(tl * 3, ty, 1.0)
    assert fit_temperature(logits, y) == fit_temperature(logits, y)  # deterministic


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        ECE(0)
    with pytest.raises(ValueError):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


# --- the calibration suite --------------------------------------------------------------------------

def test_calibration_suite_fits_temperature_on_val_only(fmnist_checkpoint, tmp_path, monkeypatch):
    from shiftlab.app.evaluate import evaluate_model
    from shiftlab.core.identity import CalibrationCell, Summary
    from shiftlab.data import load_dataset
    from shiftlab.evaluation.suites import calibration as calibration_suite
    from shiftlab.evaluation.suites.calibration import METRIC_NAMES
    from shiftlab.models import load_model

    monkeypatch.setattr(calibration_suite, "VAL_LIMIT", 1500)  # speed: the default is 10,000 val images
    options = {"corruptions": "gaussian_noise", "severities": "5"}
    store = tmp_path / "s.db"
    report = evaluate_model(fmnist_checkpoint, ["calibration"], store=store, options=options, limit=200, device="cpu")
    rows = {r.id.task: r for r in report.rows}
    assert set(rows) == {CalibrationCell(), CalibrationCell("gaussian_noise", 5, "cifar"),
                         Summary("calibration", "cifar")}
    clean = rows[CalibrationCell()]
    for name in METRIC_NAMES:
        assert name in clean.metrics and f"{name}_ts" in clean.metrics
    assert clean.metrics["accuracy"] == clean.metrics["accuracy_ts"]
    model, _ = load_model(fmnist_checkpoint)
    val = load_dataset("fashion-mnist", "val")
    x, y = val.get_batch(torch.arange(1500))
    with torch.inference_mode():
        expected = fit_temperature(model(x), y).temperature
    assert clean.metrics["temperature"] == pytest.approx(expected)
    assert clean.metrics["val_nll_ts"] <= clean.metrics["val_nll"]
    assert sum(clean.artifacts["reliability_ts"]["count"]) == 200
    shifted = rows[CalibrationCell("gaussian_noise", 5, "cifar")]
    assert shifted.metrics["temperature"] == clean.metrics["temperature"]
    assert shifted.metrics["accuracy"] < clean.metrics["accuracy"] - 0.05
    assert shifted.params["severity"] == 5
    again = evaluate_model(fmnist_checkpoint, ["calibration"], store=store, options=options, limit=200, device="cpu")
    assert not again.ran  # resumes: nothing recomputed


def test_calibration_resume_respects_the_parameter_table(fmnist_checkpoint, tmp_path, monkeypatch):
    """Issue 13, defect 2: `--params imagenet` after a default run computes the imagenet cells, never
    reusing the cifar table's rows."""
    from shiftlab.app.evaluate import evaluate_model
    from shiftlab.core.identity import CalibrationCell
    from shiftlab.evaluation.suites import calibration as calibration_suite

    monkeypatch.setattr(calibration_suite, "VAL_LIMIT", 500)
    store = tmp_path / "s.db"
    first = evaluate_model(fmnist_checkpoint, ["calibration"], store=store, limit=100, device="cpu",
                           options={"corruptions": "gaussian_noise", "severities": "5"})
    second = evaluate_model(fmnist_checkpoint, ["calibration"], store=store, limit=100, device="cpu",
                            options={"corruptions": "gaussian_noise", "severities": "5", "params": "imagenet"})
    assert "gaussian_noise s5 (imagenet)" in second.ran
    cells = {r.id.task: r for r in second.rows}
    cifar = cells[CalibrationCell("gaussian_noise", 5, "cifar")]
    imagenet = cells[CalibrationCell("gaussian_noise", 5, "imagenet")]
    assert imagenet.params["table"] == "imagenet" and cifar.params["table"] == "cifar"
    assert imagenet.metrics["accuracy"] < cifar.metrics["accuracy"]  # ImageNet-C noise is much stronger
    assert len(first.ran) == 2
