"""OOD metrics vs scikit-learn, detectors vs direct implementations, feature hooks, generated OOD sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.neighbors import NearestNeighbors
from torch import nn

from shiftlab.data import DATASETS, load_dataset
from shiftlab.metrics.ood import (
    AUROC,
    FPR95,
    AUPRIn,
    AUPROut,
    downsample_curve,
    fpr_at_tpr,
    ood_aupr_in,
    ood_aupr_out,
    ood_auroc,
    roc_points,
)
from shiftlab.ood import DETECTORS, penultimate_features
from shiftlab.ood.knn import KNN
from shiftlab.ood.mahalanobis import Mahalanobis
from shiftlab.ood.odin import ODIN

GENERATED = ["uniform-noise", "gaussian-noise", "blobs"]


def sk_metrics(s_in: np.ndarray, s_out: np.ndarray) -> tuple[float, float, float]:
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    s = np.r_[s_in, s_out]
    return roc_auc_score(y, s), average_precision_score(y, s), average_precision_score(1 - y, -s)


def sk_fpr95(s_in: np.ndarray, s_out: np.ndarray) -> float:
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    fpr, tpr, _ = roc_curve(y, np.r_[s_in, s_out], drop_intermediate=False)
    return float(fpr[np.argmax(tpr >= 0.95)])


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_match_sklearn(seed, ties):
    g = torch.Generator().manual_seed(seed)
    s_in = torch.randn(300 + 50 * seed, generator=g, dtype=torch.float64) + 1.0
    s_out = torch.randn(200, generator=g, dtype=torch.float64)
    if ties:  # few distinct values: many ties inside and across the two sets
        s_in, s_out = s_in.mul(2).round(), s_out.mul(2).round()
    auroc, ap_in, ap_out = sk_metrics(s_in.numpy(), s_out.numpy())
    assert ood_auroc(s_in, s_out) == pytest.approx(auroc, abs=1e-12)
    assert ood_aupr_in(s_in, s_out) == pytest.approx(ap_in, abs=1e-12)
    assert ood_aupr_out(s_in, s_out) == pytest.approx(ap_out, abs=1e-12)
    assert fpr_at_tpr(s_in, s_out) == pytest.approx(sk_fpr95(s_in.numpy(), s_out.numpy()), abs=1e-12)


def test_fpr95_crafted_cases_with_ties():
    s_in = torch.arange(1, 21, dtype=torch.float64)  # 20 ID scores 1..20; TPR 95 % needs threshold <= 2
    assert fpr_at_tpr(s_in, torch.tensor([0.0, 1.5, 2.0, 3.0])) == pytest.approx(0.5)  # accepts 2.0 and 3.0
    assert fpr_at_tpr(s_in, torch.tensor([0.0, 0.5, 1.9, 1.99])) == 0.0
    # ties: 19 ID at 1.0 and one at 5.0; threshold 1.0 is the first reaching 95 %, every tied OOD passes
    s_in = torch.tensor([5.0] + [1.0] * 19, dtype=torch.float64)
    assert fpr_at_tpr(s_in, torch.tensor([1.0, 1.0, 0.0, 6.0])) == pytest.approx(0.75)
    # 100 ID with exactly 95 above 0.5: the threshold is the 95th score, OOD at it are accepted
    s_in = torch.cat([torch.full((95,), 1.0), torch.full((5,), 0.0)]).double()
    assert fpr_at_tpr(s_in, torch.tensor([1.0, 0.5, 0.5, 0.0])) == pytest.approx(0.25)
    # perfect separation and full overlap
    assert ood_auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert ood_auroc(torch.ones(5), torch.ones(7)) == 0.5
    assert fpr_at_tpr(torch.ones(5), torch.ones(7)) == 1.0


def test_accumulators_stream_and_merge():
    g = torch.Generator().manual_seed(3)
    s_in, s_out = torch.randn(400, generator=g) + 0.7, torch.randn(300, generator=g)
    for cls, fn in ((AUROC, ood_auroc), (AUPRIn, ood_aupr_in), (AUPROut, ood_aupr_out), (FPR95, fpr_at_tpr)):
        a, b = cls(), cls()
        a.update(s_in[:150], True)
        a.update(s_out[:100], torch.zeros(100, dtype=torch.bool))
        b.update(torch.cat([s_in[150:], s_out[100:]]), torch.cat([torch.ones(250), torch.zeros(200)]).bool())
        assert a.merge(b).compute() == pytest.approx(fn(s_in, s_out), abs=1e-12), cls.__name__
    roc = a.roc(max_points=50)
    assert len(roc["fpr"]) <= 50 and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and roc["fpr"][-1] == 1.0


def test_roc_points_and_downsampling_monotone():
    g = torch.Generator().manual_seed(4)
    fpr, tpr, thr = roc_points(torch.randn(1000, generator=g), torch.randn(900, generator=g))
    assert bool((fpr.diff() >= 0).all() and (tpr.diff() >= 0).all() and (thr.diff() < 0).all())
    curve = downsample_curve(fpr, tpr, 200)
    assert len(curve["fpr"]) <= 200 and curve["fpr"][-1] == 1.0
    assert np.all(np.diff(curve["fpr"]) >= 0)


def test_metric_inputs_validated():
    with pytest.raises(ValueError):
        ood_auroc(torch.empty(0), torch.ones(3))
    with pytest.raises(ValueError):
        fpr_at_tpr(torch.ones(3), torch.ones(3), 0.0)


# --- features ---------------------------------------------------------------------------------------

def test_penultimate_features_forward_features_equals_hook(fmnist_model, fmnist_test):
    model = fmnist_model[0]
    x, _ = fmnist_test.get_batch(torch.arange(64))
    with torch.no_grad():
        via_method = penultimate_features(model, x)
        via_hook = penultimate_features(model, x, layer="model.classifier")
        assert torch.allclose(via_method, via_hook, atol=1e-6)
        assert torch.allclose(model.model.classifier(via_method), model(x), atol=1e-5)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    with torch.no_grad():
        f = penultimate_features(plain, x)
        assert f.shape == (64, 32) and torch.allclose(plain[3](f), plain(x), atol=1e-6)
    from shiftlab.core.errors import UserError

    with pytest.raises(UserError):
        penultimate_features(plain, x, layer="nope")
    with pytest.raises(UserError):
        penultimate_features(nn.Sequential(nn.Flatten()), x)


# --- detectors --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_fit_set():
    return load_dataset("fashion-mnist", "train", limit=1000)


@pytest.fixture(scope="module")
def id_and_ood(fmnist_test):
    x_in, _ = fmnist_test.get_batch(torch.arange(200))
    x_out, _ = load_dataset("blobs", "test", limit=200).get_batch(torch.arange(200))
    return x_in, x_out


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name, fmnist_model, small_fit_set, id_and_ood):
    model = fmnist_model[0]
    det = DETECTORS.get(name)()
    if DETECTORS.meta(name).needs_fit:
        with pytest.raises(RuntimeError):
            det.score(model, id_and_ood[0][:4])
        det.fit(model, small_fit_set, batch_size=500)
    x_in, x_out = id_and_ood
    x_copy = x_in.clone()
    training = model.training
    s_in, s_out = det.score(model, x_in), det.score(model, x_out)
    assert s_in.shape == (200,) and bool(torch.isfinite(s_in).all())
    assert torch.equal(det.score(model, x_in), s_in)  # deterministic
    assert torch.equal(x_in, x_copy) and model.training == training
    assert all(p.grad is None for p in model.parameters())
    assert ood_auroc(s_in, s_out) > 0.75  # blobs are far from clothing for every detector


def test_msp_maxlogit_energy_definitions(fmnist_model, id_and_ood):
    model, x = fmnist_model[0], id_and_ood[0][:50]
    with torch.no_grad():
        z = model(x).double()
    assert torch.allclose(DETECTORS.get("msp")().score(model, x), z.softmax(1).max(1).values)
    assert torch.allclose(DETECTORS.get("maxlogit")().score(model, x), z.max(1).values)
    energy = torch.tensor([np.log(np.exp(row).sum()) for row in z.numpy()], dtype=torch.float64)
    assert torch.allclose(DETECTORS.get("energy")().score(model, x), energy)


def test_odin_step_and_reduction(fmnist_model, id_and_ood):
    model, x = fmnist_model[0], id_and_ood[0][:100]
    with torch.no_grad():
        z = model(x).double()
    plain = ODIN(temperature=1000.0, eps=0.0)
    assert torch.allclose(plain.score(model, x), (z / 1000).softmax(1).max(1).values)
    odin = ODIN(temperature=1000.0, eps=0.002)
    x_pert = odin.perturb(model, x)
    step = (x_pert - x).abs()
    assert float(step.max()) <= 0.002 + 1e-7 and x_pert.min() >= 0 and x_pert.max() <= 1
    inside = (x > 0.002) & (x < 1 - 0.002)
    assert torch.allclose(step[inside], torch.full_like(step[inside], 0.002), atol=1e-6)
    # the step raises the temperature-scaled max softmax (first-order decrease of the loss)
    assert float((odin.score(model, x) >= plain.score(model, x)).double().mean()) > 0.9


def test_mahalanobis_matches_numpy(fmnist_model, small_fit_set, id_and_ood):
    model = fmnist_model[0]
    det = Mahalanobis().fit(model, small_fit_set, batch_size=500)
    xs, ys = small_fit_set.get_batch(torch.arange(len(small_fit_set)))
    with torch.no_grad():
        f = model.forward_features(xs).double().numpy()
        q = model.forward_features(id_and_ood[0][:40]).double().numpy()
    y = ys.numpy()
    means = np.stack([f[y == c].mean(0) for c in range(10)])
    centred = f - means[y]
    prec = np.linalg.pinv(centred.T @ centred / len(f), hermitian=True)
    expected = np.array([max(-(v - m) @ prec @ (v - m) for m in means) for v in q])
    np.testing.assert_allclose(det.score(model, id_and_ood[0][:40]).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_knn_matches_sklearn(fmnist_model, small_fit_set, id_and_ood):
    model = fmnist_model[0]
    det = KNN(k=50).fit(model, small_fit_set, batch_size=500)
    xs, _ = small_fit_set.get_batch(torch.arange(len(small_fit_set)))
    with torch.no_grad():
        bank = model.forward_features(xs).double().numpy()
        q = model.forward_features(id_and_ood[1][:40]).double().numpy()
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    dist, _ = NearestNeighbors(n_neighbors=50).fit(bank).kneighbors(q)
    np.testing.assert_allclose(det.score(model, id_and_ood[1][:40]).numpy(), -dist[:, -1], atol=2e-4)


# --- generated OOD sets -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", GENERATED)
@pytest.mark.parametrize(("size", "channels"), [(28, 1), (32, 3)])
def test_generated_sets_contract(name, size, channels):
    ds = load_dataset(name, "test", image_size=size, extra={"channels": str(channels), "n": "600"})
    assert len(ds) == 600 and ds.info.channels == channels and ds.info.image_size == (size, size)
    x, y = ds.get_batch(torch.arange(600))
    assert x.shape == (600, channels, size, size) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and bool((y == 0).all())
    again = load_dataset(name, "test", image_size=size, extra={"channels": str(channels), "n": "600"})
    idx = torch.tensor([599, 3, 300, 257])
    assert torch.equal(again.get_batch(idx)[0], x[idx])  # seeded; any image the same alone or in a batch
    other = load_dataset(name, "val", image_size=size, extra={"channels": str(channels), "n": "600"})
    assert not torch.equal(other.get_batch(idx)[0], x[idx])
    assert x.std() > 0.05 and x.std(0).mean() > 0.05  # images differ from each other


def test_blobs_follow_their_definition():
    from shiftlab.data.ood_sets import blob_images, gaussian_blur

    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64)
    ref = np.stack([gaussian_filter(img[0], sigma=1.0, mode="mirror", truncate=3.0) for img in x.numpy()])
    np.testing.assert_allclose(gaussian_blur(x, 1.0)[:, 0].numpy(), ref, atol=1e-12)
    blobs = blob_images((64, 1, 28, 28), torch.Generator().manual_seed(1))
    nonzero = blobs[blobs > 0]
    assert float(nonzero.min()) >= 0.75 and 0.2 < float((blobs > 0).double().mean()) < 0.8


def test_ood_set_errors_are_user_errors():
    from shiftlab.core.errors import UserError

    assert all(n in DATASETS for n in GENERATED)
    with pytest.raises(UserError):
        load_dataset("blobs", "test", extra={"channels": "x"})
    with pytest.raises(UserError):
        load_dataset("blobs", "test", extra={"n": "0"})


# --- the OOD suite ----------------------------------------------------------------------------------

def test_ood_suite_tasks_metrics_and_roc(fmnist_checkpoint, tmp_path, monkeypatch):
    from shiftlab.app.evaluate import evaluate_model
    from shiftlab.core.errors import UserError
    from shiftlab.core.identity import OODPair, Summary
    from shiftlab.evaluation.suites import ood as ood_suite

    monkeypatch.setattr(ood_suite, "FIT_SUBSET", 500)  # speed: the default bank is 10,000 train images
    # speed: one detector per code path (shared logits, fitted); every detector is tested above
    monkeypatch.setattr(ood_suite, "detector_names", lambda: ["msp", "energy", "knn"])
    report = evaluate_model(fmnist_checkpoint, ["ood"], store=tmp_path / "s.db", limit=200, device="cpu",
                            options={"ood_set": ["blobs", "digits", "near-ood:fog"]})
    rows = {r.id.task: r for r in report.rows}
    sets = ("blobs", "digits", "near-ood:fog")
    assert set(rows) == {OODPair(s, d) for s in sets for d in ("msp", "energy", "knn")} | {Summary("ood")}
    for key, row in rows.items():
        if key == Summary("ood"):
            assert row.metrics["auroc_mean/msp"] == pytest.approx(
                sum(rows[OODPair(s, "msp")].metrics["auroc"] for s in sets) / 3)
            continue
        for metric in ("auroc", "aupr_in", "aupr_out", "fpr95"):
            assert 0.0 <= row.metrics[metric] <= 1.0
        roc = row.artifacts["roc"]
        assert len(roc["fpr"]) == len(roc["tpr"]) <= 200 and roc["tpr"][-1] == 1.0
        assert row.metrics["n_in"] == 200
    assert rows[OODPair("blobs", "knn")].metrics["auroc"] > 0.9
    with pytest.raises(UserError):
        evaluate_model(fmnist_checkpoint, ["ood"], store=tmp_path / "s.db", limit=50, device="cpu",
                       options={"ood_set": ["no-such-set"]})
