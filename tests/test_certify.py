"""Randomized smoothing (issue 17): the statistics against scipy, the decisions on crafted counts and on
base classifiers whose smoothed radius is known exactly, certificates that survive an attack inside
their radius (and an attack that breaks them outside it), per-image randomness, resume after a kill,
the suite on real Fashion-MNIST and its report view."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from scipy import stats
from torch import nn

from shiftlab.app.evaluate import evaluate_model
from shiftlab.attacks import ThreatModel, run_attack
from shiftlab.certify import (
    ABSTAIN,
    NoiseSeeds,
    Smoothed,
    SoftSmoothed,
    binomial_test_half,
    certify_from_counts,
    clopper_pearson_lower,
    gaussian_draws,
    noise_chunk,
    predict_from_counts,
)
from shiftlab.core.identity import CertifyCell, Summary
from shiftlab.core.seeding import ImageStreams, make_generator
from shiftlab.evaluation.context import test_identity as dataset_identity
from shiftlab.models import load_model
from shiftlab.report import load_leaderboard, write_report
from shiftlab.store import ResultKey, Store

HERE = Path(__file__).resolve().parent
MODEL = "zoo:gaussian-smoothing"  # small-cnn trained one epoch on Fashion-MNIST under N(0, 0.25²) noise
SIGMA = 0.25


@pytest.fixture(scope="module")
def smoothing_model():
    model, card = load_model(MODEL)
    return model


# ---- the statistics -------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05])
def test_clopper_pearson_equals_scipy_beta_quantile(alpha):
    """The bound is Beta(alpha; k, n − k + 1) and, independently, the p at which P(X ≥ k | p) = alpha."""
    for n in (1, 10, 100, 1000, 100_000):
        ks = sorted({0, 1, n // 3, n // 2, n - 1, n})
        got = clopper_pearson_lower(torch.tensor(ks), n, alpha)
        for k, bound in zip(ks, got.tolist(), strict=True):
            expected = 0.0 if k == 0 else stats.beta.ppf(alpha, k, n - k + 1)
            assert bound == pytest.approx(expected, rel=1e-12, abs=1e-15), (k, n)
            if 0 < k:
                assert stats.binom.sf(k - 1, n, bound) == pytest.approx(alpha, rel=1e-6), (k, n)
    assert clopper_pearson_lower(torch.tensor([1000]), 1000, alpha).item() == pytest.approx(alpha ** (1 / 1000))


def test_binomial_test_equals_scipy_binomtest():
    pairs = [(0, 0), (5, 0), (50, 50), (60, 40), (61, 39), (990, 10), (3, 7), (1, 1), (20, 0), (512, 488)]
    got = binomial_test_half(torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs]))
    for (a, b), p in zip(pairs, got.tolist(), strict=True):
        expected = 1.0 if a + b == 0 else stats.binomtest(a, a + b, 0.5).pvalue
        assert p == pytest.approx(expected, rel=1e-9), (a, b)


def counts(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)


def test_radius_is_the_papers_formula_on_crafted_counts():
    """radius = sigma · Φ⁻¹(Beta(alpha; n_A, n − n_A + 1)) for the class the selection counts chose."""
    alpha, sigma = 0.001, 0.5
    selection = counts([[90, 10, 0], [0, 100, 0], [5, 95, 0], [50, 50, 0], [100, 0, 0]])
    estimation = counts([[990, 10, 0], [0, 1000, 0], [700, 300, 0], [500, 500, 0], [1000, 0, 0]])
    cert = certify_from_counts(selection, estimation, alpha, sigma)
    # image 0: n_A = 990; image 1: all votes; image 2: the selection chose class 1, which got 300 of 1000
    # votes (CERTIFY never switches to the estimation's majority); image 3: a tie (the lowest class is
    # chosen, p_A cannot exceed 1/2); image 4: all 1000 votes for class 0
    assert cert.prediction.tolist() == [0, 1, ABSTAIN, ABSTAIN, 0]
    assert cert.count.tolist() == [990, 1000, 300, 500, 1000]
    for i, n_a in ((0, 990), (1, 1000), (4, 1000)):
        expected = sigma * stats.norm.ppf(stats.beta.ppf(alpha, n_a, 1000 - n_a + 1))
        assert cert.radius[i].item() == pytest.approx(expected, rel=1e-12)
    assert cert.radius[1].item() == pytest.approx(sigma * stats.norm.ppf(alpha ** (1 / 1000)), rel=1e-12)
    assert cert.radius[2].item() == 0.0 and cert.radius[3].item() == 0.0
    assert bool((cert.p_lower[2:4] < 0.5).all())


def test_predict_abstains_when_the_top_counts_tie():
    got = predict_from_counts(counts([[50, 50, 0], [100, 0, 0], [60, 40, 0], [0, 3, 97], [7, 7, 7]]), 0.001)
    assert got.tolist() == [ABSTAIN, 0, ABSTAIN, 2, ABSTAIN]  # 60 vs 40: p = 0.057 > 0.001


class HalfSpace(nn.Module):
    """Class 0 when the first pixel exceeds 0.5, else class 1 (of 10 classes). Smoothed, it is still the
    half-space, so its true robust radius at x is |x₀ − 0.5| and p_A = Φ(|x₀ − 0.5| / σ) exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(len(x))
        above = (x[:, 0, 0, 0] > 0.5).float()
        return torch.nn.functional.pad(torch.stack([above, 1 - above], 1), (0, 8))


def test_half_space_radius_is_valid_and_tight_with_bounded_memory_at_n_100000():
    """At n = 100,000 the certified radius stays below the true one (the distance to the boundary) and
    within 6 % of it; a point on the boundary abstains; no forward pass holds more than one chunk."""
    model = HalfSpace()
    x = torch.stack([torch.full((1, 8, 8), v) for v in (0.9, 0.5, 0.2)])
    noise = NoiseSeeds.for_images(0, "half-space", range(3))
    smoothed = Smoothed(model, SIGMA, fast=False)
    cert = smoothed.certify(x, 100, 100_000, 0.001, noise)
    assert cert.prediction.tolist() == [0, ABSTAIN, 1]
    for i, distance in ((0, 0.4), (2, 0.3)):
        assert 0.94 * distance < cert.radius[i].item() <= distance
        p_true = stats.norm.cdf(distance / SIGMA)
        assert cert.p_lower[i].item() <= p_true
    assert max(model.seen) == noise_chunk((1, 8, 8)) == 1024
    assert smoothed.predict(x, 1000, 0.001, noise).tolist() == [0, ABSTAIN, 1]
    votes = smoothed.counts(x, 100_000, noise, "estimation")
    assert votes.sum(1).tolist() == [100_000] * 3
    assert abs(votes[1, 0].item() - 50_000) < 4 * math.sqrt(25_000)  # the boundary point: a fair coin


def test_tiny_sigma_gives_the_base_models_prediction(fmnist_model, fmnist_test):
    model, _ = fmnist_model
    x, _ = fmnist_test.get_batch(torch.arange(64))
    with torch.inference_mode():
        base = model(x).argmax(1)
    noise = NoiseSeeds.for_images(0, "tiny-sigma", range(64))
    flags = [p.requires_grad for p in model.parameters()]
    model.train()  # the caller's mode: counting runs in eval mode and leaves this one alone
    try:
        smoothed = Smoothed(model, 1e-4)
        assert torch.equal(smoothed.predict(x, 64, 0.001, noise), base)
        cert = smoothed.certify(x, 16, 64, 0.001, noise)
        assert model.training and all(m.training for m in model.modules())
    finally:
        model.eval()
    assert torch.equal(cert.prediction, base)
    assert [p.requires_grad for p in model.parameters()] == flags


# ---- certificates hold -----------------------------------------------------------------------------


def attack_smoothed(model: nn.Module, x: torch.Tensor, label: int, eps: float, index: int) -> torch.Tensor:
    """PGD-L2 (shiftlab.attacks) on the soft smoothed classifier with 16 fixed noise draws of its own."""
    noise = gaussian_draws((16, *x.shape), SIGMA, make_generator(0, "mc-attack", index))
    soft = SoftSmoothed(model, noise)
    threat = ThreatModel("l2", eps, steps=20)
    x_adv, _ = run_attack("pgd", soft, x[None], torch.tensor([label]), threat,
                          ImageStreams.for_images(0, "mc-attack", torch.tensor([index])))
    assert float((x_adv[0] - x).flatten().norm()) <= eps + 1e-5
    return x_adv[0]


def test_certificates_hold_against_an_l2_attack_inside_the_radius(smoothing_model, fmnist_test):
    """Certified points attacked inside their radius keep PREDICT's answer (a flip has probability at most
    alpha for the certificate plus alpha for PREDICT, so more than one flip in 24 points would fail a
    level-0.001 test); the same attack with a budget of radius + 1 does flip predictions, so it has teeth."""
    model, alpha, count = smoothing_model, 0.001, 24
    x, _ = fmnist_test.get_batch(torch.arange(count))
    smoothed = Smoothed(model, SIGMA)
    cert = smoothed.certify(x, 64, 500, alpha, NoiseSeeds.for_images(0, "mc-certify", range(count)))
    certified = [i for i in range(count) if cert.prediction[i] != ABSTAIN]
    assert len(certified) >= count // 2
    flips = {}
    for extra in (0.0, 1.0):
        attacked = torch.stack([attack_smoothed(model, x[i], int(cert.prediction[i]), cert.radius[i].item() + extra, i)
                                for i in certified])
        again = smoothed.predict(attacked, 500, alpha, NoiseSeeds.for_images(0, f"mc-predict-{extra}", certified))
        wanted = cert.prediction[certified]
        flips[extra] = int(((again != wanted) & (again != ABSTAIN)).sum())
    assert flips[0.0] <= 1, flips
    assert flips[1.0] >= len(certified) // 4, flips


# ---- randomness keyed by image ------------------------------------------------------------------------


def test_an_images_certificate_does_not_depend_on_its_batch(smoothing_model, fmnist_test):
    x, _ = fmnist_test.get_batch(torch.arange(6))
    noise = NoiseSeeds.for_images(0, "batch", range(6))
    smoothed = Smoothed(smoothing_model, SIGMA)
    whole = smoothed.certify(x, 16, 128, 0.001, noise)
    halves = [smoothed.certify(x[s], 16, 128, 0.001, noise.subset(range(s.start, s.stop))) for s in (slice(0, 3),
                                                                                                   slice(3, 6))]
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    shuffled = smoothed.certify(x[order], 16, 128, 0.001, noise.subset(order))
    for name in ("prediction", "radius", "count"):
        ref = getattr(whole, name)
        assert torch.equal(torch.cat([getattr(h, name) for h in halves]), ref), name
        assert torch.equal(getattr(shuffled, name), ref[order]), name
    other_task = smoothed.certify(x, 16, 128, 0.001, NoiseSeeds.for_images(0, "another task", range(6)))
    assert not torch.equal(other_task.count, whole.count)  # the task key changes the draws


def per_image(rows) -> dict:
    return {r.id.task: r.artifacts["per_image"] for r in rows if isinstance(r.id.task, CertifyCell)}


def test_suite_results_do_not_depend_on_the_batch_size(tmp_path):
    options = {"sigma": "0.25", "n": "128", "n0": "16", "corruptions": "fog", "severities": "5"}
    results = [per_image(evaluate_model(MODEL, ["certify"], store=tmp_path / f"{b}.db", options=options, limit=20,
                                        batch_size=b, device="cpu").rows) for b in (7, 256)]
    assert len(results[0]) == 2 and results[0] == results[1]


# ---- resume ---------------------------------------------------------------------------------------------


def test_kill_midway_keeps_finished_blocks_and_the_rerun_certifies_only_the_rest(tmp_path):
    db = tmp_path / "kill.db"
    cmd = [sys.executable, str(HERE / "certify_kill_script.py"), MODEL, str(db)]
    cell = CertifyCell(SIGMA, 200, 16, 0.001)
    _, card = load_model(MODEL)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    deadline, saved = time.time() + 600, {}
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if not db.exists():
            continue
        try:
            with Store(db, create=False) as store:
                key = ResultKey(card.fingerprint, dataset_identity("fashion-mnist", None, 64, store), cell, 0)
                saved = store.load_batches(key)
        except Exception:  # noqa: BLE001 - the store may be mid-creation
            continue
        if len(saved) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 2 <= len(saved) < 4
    with Store(db) as store:
        assert store.tasks(with_artifacts=False) == []  # the cell was not finished
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True).stdout
    redone = sorted(int(line.split()[1]) for line in out.splitlines() if line.startswith("BLOCK"))
    kept = sorted(payload["start"] for payload in saved.values())
    assert sorted(redone + kept) == [0, 16, 32, 48] and not set(redone) & set(kept)
    with Store(db) as store:
        rows = store.tasks(suite="certify", summaries=False)
    assert len(rows) == 1 and rows[0].metrics["n"] == 64
    images = rows[0].artifacts["per_image"]
    for payload in saved.values():  # the blocks kept from the killed run are the stored result
        start = payload["start"]
        assert images["radius"][start:start + 16] == payload["radius"]
    model, _ = load_model(MODEL)
    x, _ = load_first_images(64)
    fresh = Smoothed(model, SIGMA).certify(x, 16, 200, 0.001, NoiseSeeds.for_images(0, cell.key(), range(64)))
    assert images["prediction"] == fresh.prediction.tolist() and images["radius"] == fresh.radius.tolist()


def load_first_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from shiftlab.data import load_dataset

    return load_dataset("fashion-mnist", "test", limit=n).get_batch(torch.arange(n))


# ---- the suite on Fashion-MNIST and its view ------------------------------------------------------------

SUITE_OPTIONS = {"sigma": "0.25", "n": "200", "n0": "32", "alpha": "0.001", "corruptions": "fog,gaussian_noise",
                 "severities": "5"}


@pytest.fixture(scope="module")
def certify_store(tmp_path_factory) -> tuple[Path, list]:
    path = tmp_path_factory.mktemp("certify") / "store.db"
    report = evaluate_model(MODEL, ["clean", "certify"], store=path, options=SUITE_OPTIONS, limit=48, device="cpu")
    return path, report.rows


def test_suite_certifies_clean_and_corrupted_fashion_mnist(certify_store):
    path, rows = certify_store
    cells = {r.id.task: r for r in rows if isinstance(r.id.task, CertifyCell)}
    clean = cells[CertifyCell(SIGMA, 200, 32, 0.001)]
    fog = cells[CertifyCell(SIGMA, 200, 32, 0.001, "fog", 5, "cifar")]
    noise = cells[CertifyCell(SIGMA, 200, 32, 0.001, "gaussian_noise", 5, "cifar")]
    for row in (clean, fog, noise):
        m = row.metrics
        accs = [m[f"certified_accuracy/{r:g}"] for r in (0, 0.25, 0.5, 0.75, 1.0)]
        assert accs == sorted(accs, reverse=True) and m["n"] == 48
        assert 0 <= m["abstention_rate"] <= 1 and m["acr"] >= 0
        curve = row.artifacts["curve"]
        assert curve["certified_accuracy"][0] == pytest.approx(accs[0])
        images = row.artifacts["per_image"]
        assert len(images["radius"]) == 48
        radius, correct = torch.tensor(images["radius"]), torch.tensor(images["correct"])
        assert m["acr"] == pytest.approx(float((radius * correct).mean()))
    assert clean.metrics["certified_accuracy/0"] >= 0.6 and clean.metrics["acr"] > 0.2
    # n = 200 at alpha 0.001 caps p_A's bound at 0.001^(1/200), so no radius exceeds sigma·Φ⁻¹ of it
    cap = SIGMA * stats.norm.ppf(0.001 ** (1 / 200))
    assert max(clean.artifacts["per_image"]["radius"]) <= cap + 1e-12
    assert clean.metrics["certified_accuracy/0.75"] == 0.0
    # fog (low-frequency) takes certified accuracy down the most (Sun et al. 2021)
    assert fog.metrics["acr"] < clean.metrics["acr"] and fog.metrics["acr"] < noise.metrics["acr"]
    summary = next(r for r in rows if r.id.task == Summary("certify"))
    assert summary.metrics["acr/sigma=0.25/clean"] == clean.metrics["acr"]
    assert summary.metrics["acr/sigma=0.25/fog"] == fog.metrics["acr"]
    assert summary.metrics["certified_accuracy/sigma=0.25/r=0.25/corrupted"] == pytest.approx(
        (fog.metrics["certified_accuracy/0.25"] + noise.metrics["certified_accuracy/0.25"]) / 2)
    assert "acr/sigma=0.25/family:weather" in summary.metrics
    again = evaluate_model(MODEL, ["certify"], store=path, options=SUITE_OPTIONS, limit=48, device="cpu")
    assert again.ran == [] and len(again.skipped) == 3


def test_view_draws_curves_and_adds_leaderboard_columns(certify_store, tmp_path):
    path, rows = certify_store
    clean = next(r for r in rows if r.id.task == CertifyCell(SIGMA, 200, 32, 0.001))
    with Store(path) as store:
        board = load_leaderboard(store)
        write_report(store, tmp_path / "out", "html")
    assert "certified_0.25_sigma_0.25" in board.column_keys() and "acr_sigma_0.25" in board.column_keys()
    cell = board.cells[0]["certified_0.25_sigma_0.25"]
    assert cell.value == clean.metrics["certified_accuracy/0.25"] and cell.n == 48
    assert board.cells[0]["acr_sigma_0.25"].value == clean.metrics["acr"]
    card = next(p.read_text() for p in (tmp_path / "out").glob("model-*.html"))
    part = card.split("<h2>Certified robustness (randomized smoothing)</h2>")[1].split("<h2>")[0]
    assert "<svg" in part and "L2 radius r" in part and "weather" in part and "noise" in part
    assert "σ = 0.25, n = 200, n0 = 32, α = 0.001" in part and "fog s5 (weather)" in part
