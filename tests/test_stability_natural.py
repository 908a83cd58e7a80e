"""The stability suite (flip probability, top-5 distance, mFR and mT5D of Hendrycks & Dietterich 2019) and
the natural-shift suite (effective robustness of Taori et al. 2020 on Miller et al. 2021's probit axes), with
their report views, on crafted models and images where the answer is known by hand and on real Fashion-MNIST."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch
from torch import nn

from shiftlab.adapt import adapter_args
from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.errors import UserError
from shiftlab.core.identity import (
    AdaptedCell,
    AdaptedNaturalCell,
    AdaptedSummary,
    CleanCell,
    NaturalShiftCell,
    StabilityCell,
    Summary,
)
from shiftlab.data import TensorImageDataset, load_dataset
from shiftlab.evaluation import EvalContext, RunOptions, run_suites, suite_requests
from shiftlab.evaluation.context import identify
from shiftlab.evaluation.suites.natural import clip_accuracy, effective_robustness, probit_fit
from shiftlab.evaluation.suites.stability import sequence_scores
from shiftlab.models import ModelCard, ModelConfig, checkpoint_fingerprint, load_model
from shiftlab.report import load_leaderboard, write_report
from shiftlab.store import Store

pytestmark = pytest.mark.usefixtures("single_thread")

PHI = NormalDist()


# ---- crafted models on crafted images: the flip probability by hand ------------------------------------


class Constant(nn.Module):
    """The same logits for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.arange(10, dtype=torch.float32).expand(len(x), 10)


class BrightnessStep(nn.Module):
    """Predicts floor(mean brightness / 0.05) mod 10: a step function of the frame's brightness."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = torch.floor(x.mean((1, 2, 3)) / 0.05).long() % 10
        return nn.functional.one_hot(level, 10).float()


class AnyLit(nn.Module):
    """Predicts class 1 when any pixel is above 0, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot((x.flatten(1).amax(1) > 0).long(), 10).float()


def crafted_context(store: Store, model: nn.Module, grey_level: int, n: int = 5, batch_size: int = 256) -> EvalContext:
    """An evaluation of ``model`` on ``n`` uniform 28 px images of one grey level (Fashion-MNIST's format)."""
    info = load_dataset("fashion-mnist", "test", limit=1).info
    data = TensorImageDataset(torch.full((n, 1, 28, 28), grey_level, dtype=torch.uint8), torch.zeros(n, dtype=torch.long),
                              info)
    card = ModelCard(ModelConfig("crafted", 10, 1, (28, 28), (0.5,), (0.25,)), name=type(model).__name__,
                     dataset="fashion-mnist", fingerprint=type(model).__name__.lower().ljust(64, "0"))
    store.upsert_model(card.fingerprint, name=card.name, arch="crafted", dataset="fashion-mnist", recipe="", num_params=0,
                       card={}, checkpoint_path="")
    return EvalContext(model=model.eval(), card=card, data=data, data_name="fashion-mnist",
                       dataset=identify(data, "crafted", "test", None, store),
                       run=RunOptions(batch_size=batch_size, device="cpu"), store=store, device=torch.device("cpu"),
                       run_id="crafted")


def stability_rows(ctx: EvalContext, sequences: str) -> dict:
    report = run_suites(ctx, suite_requests(["stability"], {"sequences": sequences}))
    return {row.id.task: row.metrics for row in report.rows}


def test_a_constant_model_never_flips(tmp_path):
    with Store(tmp_path / "s.db") as store:
        rows = stability_rows(crafted_context(store, Constant(), 120), "gaussian_noise,shot_noise,brightness,rotate")
    for name in ("gaussian_noise", "shot_noise", "brightness", "rotate"):
        assert rows[StabilityCell(name)]["flip_probability"] == 0.0
        assert rows[StabilityCell(name)]["top5_distance"] == 0.0 and rows[StabilityCell(name)]["frames"] == 31
    assert rows[Summary("stability")]["mean_flip_probability"] == 0.0


def test_flip_probability_matches_a_hand_count(tmp_path):
    with Store(tmp_path / "s.db") as store:
        # brightness frames of a uniform grey 129/255 are 129/255 + (k − 15)·0.015, k = 0..30: 0.281 → 0.731, which
        # crosses the steps 0.30, 0.35, …, 0.70 of BrightnessStep once each: 9 of the 30 consecutive pairs flip
        steps = stability_rows(crafted_context(store, BrightnessStep(), 129), "brightness")
        # noise frames of a black image: frame 0 is black (class 0), each of the 30 noisy frames has lit pixels
        # (class 1): against frame 0 all 30 differ (FP 1), while consecutive noisy frames would never differ
        noise = stability_rows(crafted_context(store, AnyLit(), 0), "gaussian_noise")
    assert steps[StabilityCell("brightness")]["flip_probability"] == pytest.approx(9 / 30)
    assert noise[StabilityCell("gaussian_noise")]["flip_probability"] == 1.0


def test_top5_distance_on_crafted_logits_is_the_hand_value():
    base = torch.tensor([6.0, 5, 4, 3, 2, 1])  # ranking 0 1 2 3 4 5
    swap_05 = torch.tensor([1.0, 5, 4, 3, 2, 6])  # class 0 leaves the top 5: |0 − 5| = 5
    swap_12 = torch.tensor([6.0, 4, 5, 3, 2, 1])  # classes 1 and 2 trade places: |1 − 2| + |2 − 1| = 2
    logits = torch.stack([base, swap_05, swap_12]).unsqueeze(1)  # 3 frames × 1 image × 6 classes
    flips, dist = sequence_scores(logits, noise=True)  # pairs (0, 1), (0, 2): distances 5 and 2 from frame 0
    assert dist.tolist() == [3.5] and flips.tolist() == [0.5]
    flips, dist = sequence_scores(logits, noise=False)  # pairs (0, 1), (1, 2)
    # frame 1 ranks 5 1 2 3 4 0; frame 2 ranks 0 2 1 3 4 5: class 5 drops out (|0 − 5|), class 1 moves 1 → 2,
    # class 2 moves 2 → 1, classes 3 and 4 stay: 5 + 1 + 1 = 7
    assert dist.tolist() == [(5 + 7) / 2] and flips.tolist() == [1.0]
    _, none = sequence_scores(logits[:, :, :4], noise=True)
    assert none is None  # fewer than five classes: no top-5 distance


# ---- on real Fashion-MNIST ------------------------------------------------------------------------------


def test_flip_probability_does_not_depend_on_the_batch_size(tmp_path):
    options = {"sequences": "gaussian_noise,translate"}
    results = []
    for batch_size in (7, 256):
        report = evaluate_model("zoo:erm", ["stability"], store=tmp_path / f"{batch_size}.db", options=options,
                                limit=30, batch_size=batch_size, device="cpu")
        results.append({r.id.task: {k: v for k, v in r.metrics.items() if k != "seconds"} for r in report.rows})
    assert results[0] == results[1] and len(results[0]) == 3
    assert results[0][StabilityCell("translate")]["frames"] == 2 * round(7 * 28 / 32) + 2


def test_a_stored_block_is_read_back_not_recomputed(tmp_path):
    """Resume: a block a killed run finished is kept in the store and used as it is; the others are computed."""
    with Store(tmp_path / "s.db") as store:
        ctx = crafted_context(store, BrightnessStep(), 129, n=300)  # blocks of 256 28-px images: 0..255, 256..299
        cell = StabilityCell("brightness")
        store.save_batch(ctx.key(cell), 1, {"start": 256, "flip_probability": [1.0] * 44, "top5_distance": [15.0] * 44})
        rows = stability_rows(ctx, "brightness")
        assert store.load_batches(ctx.key(cell)) == {}  # the finished cell replaces its blocks
    assert rows[cell]["flip_probability"] == pytest.approx((256 * 9 / 30 + 44 * 1.0) / 300)
    assert rows[cell]["n"] == 300


@pytest.mark.parametrize("options", [{"sequences": "wobble"}, {"baseline": "/no/such/model"}, {"reference": "/nope"},
                                     {"shifted_data": "no-such-set"}, {"reference": "none,zoo"}])
def test_bad_options_fail_before_anything_is_created(tmp_path, options):
    suite = "stability" if {"sequences", "baseline"} & set(options) else "natural"
    with pytest.raises(UserError):
        evaluate_model("zoo:erm", [suite], store=tmp_path / "s.db", options=options, limit=5, device="cpu")
    assert not (tmp_path / "s.db").exists()


# ---- the probit fit and effective robustness -------------------------------------------------------------


def test_probit_fit_recovers_a_line_and_effective_robustness_measures_the_height_above_it():
    slope, intercept = 0.8, -0.6
    xs = [0.55, 0.7, 0.8, 0.9, 0.97]
    ys = [PHI.cdf(slope * PHI.inv_cdf(x) + intercept) for x in xs]
    fit = probit_fit(xs, ys)
    assert fit.slope == pytest.approx(slope, abs=1e-9) and fit.intercept == pytest.approx(intercept, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12) and fit.n == 5
    er, residual = effective_robustness(fit, 0.85, PHI.cdf(slope * PHI.inv_cdf(0.85) + intercept))
    assert er == pytest.approx(0.0, abs=1e-12) and residual == pytest.approx(0.0, abs=1e-9)
    on_line = PHI.cdf(slope * PHI.inv_cdf(0.85) + intercept)
    er, residual = effective_robustness(fit, 0.85, on_line + 0.05)
    assert er == pytest.approx(0.05) and residual > 0
    er, residual = effective_robustness(fit, 0.85, on_line - 0.05)
    assert er == pytest.approx(-0.05) and residual < 0
    noisy = probit_fit(xs, [y + (0.02 if i % 2 else -0.02) for i, y in enumerate(ys)])
    assert 0.9 < noisy.r2 < 1.0
    assert clip_accuracy(1.0, 100) == 0.995 and clip_accuracy(0.0, 100) == 0.005 and clip_accuracy(0.3, 100) == 0.3
    with pytest.raises(ValueError):
        probit_fit([0.8, 0.8, 0.8], [0.5, 0.6, 0.7])


REFERENCES = "zoo:erm,zoo:pgd-at,zoo:trades,zoo:mixup"
SEQUENCES = ("rotate", "translate")
LIMIT = 64


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """augmix on the natural suite (four zoo references) and the stability suite (baseline erm), Fashion-MNIST[:64]."""
    path = tmp_path_factory.mktemp("natural") / "s.db"
    report = evaluate_model("zoo:augmix", ["natural", "stability"], store=path, limit=LIMIT, device="cpu",
                            options={"reference": REFERENCES, "sequences": ",".join(SEQUENCES), "baseline": "zoo:erm"})
    return path, report.rows


def test_natural_suite_accuracy_and_effective_robustness_follow_their_definitions(evaluated):
    path, rows = evaluated
    cells = {r.id.task: r for r in rows if isinstance(r.id.task, NaturalShiftCell)}
    assert {c.shifted for c in cells} == {"fashion-mnist-rescaled", "fashion-mnist-sketch"}
    model, _ = load_model("zoo:augmix")
    x, y = load_dataset("fashion-mnist-rescaled", "test", limit=LIMIT).get_batch(torch.arange(LIMIT))
    with torch.inference_mode():
        correct = int((model(x).argmax(1) == y).sum())
    rescaled = next(r for c, r in cells.items() if c.shifted == "fashion-mnist-rescaled")
    assert rescaled.metrics["accuracy"] == correct / LIMIT and rescaled.metrics["n"] == LIMIT
    summary = next(r for r in rows if r.id.task == Summary("natural"))
    with Store(path) as store:  # the reference models were evaluated first, each on the same images
        points = []
        for ref in REFERENCES.split(","):
            ref_rows = {r.id.task: r.metrics for r in store.tasks(checkpoint_fingerprint(ref), seed=0,
                                                                  dataset=rescaled.id.dataset)}
            points.append((ref_rows[CleanCell()]["accuracy"], ref_rows[rescaled.id.task]["accuracy"]))
        clean = {r.id.task: r for r in store.tasks(checkpoint_fingerprint("zoo:augmix"), suite="clean")}[CleanCell()]
    fit = probit_fit([clip_accuracy(a, LIMIT) for a, _ in points], [clip_accuracy(b, LIMIT) for _, b in points])
    m = summary.metrics
    assert m["reference_models/fashion-mnist-rescaled"] == 4
    assert m["fit_slope/fashion-mnist-rescaled"] == pytest.approx(fit.slope)
    assert m["fit_intercept/fashion-mnist-rescaled"] == pytest.approx(fit.intercept)
    assert m["fit_r2/fashion-mnist-rescaled"] == pytest.approx(fit.r2)
    id_acc, shifted = clean.metrics["accuracy"], rescaled.metrics["accuracy"]
    predicted = PHI.cdf(fit.slope * PHI.inv_cdf(id_acc) + fit.intercept)
    assert m["effective_robustness/fashion-mnist-rescaled"] == pytest.approx(shifted - predicted)
    assert m["probit_residual/fashion-mnist-rescaled"] == pytest.approx(
        PHI.inv_cdf(shifted) - (fit.slope * PHI.inv_cdf(id_acc) + fit.intercept))
    assert m["accuracy_drop/fashion-mnist-rescaled"] == pytest.approx(id_acc - shifted) and id_acc - shifted > 0.2
    assert not math.isnan(m["effective_robustness/fashion-mnist-sketch"])
    again = evaluate_model("zoo:augmix", ["natural"], store=path, limit=LIMIT, device="cpu",
                           options={"reference": REFERENCES})
    assert again.ran == []  # the references' rows and the model's are all reused


def test_natural_suite_under_adaptation_sits_next_to_the_source_rows(evaluated, tmp_path):
    """--adapt on the natural suite: adapted rows for the in-distribution set and every shifted set, equal to
    adapting by hand; a summary per setting with the gain and the effective robustness against the same fit."""
    path, rows = evaluated
    report = evaluate_model("zoo:augmix", ["natural"], store=path, limit=LIMIT, device="cpu",
                            options={"reference": REFERENCES, "adapt": "bn-adapt", "adapt_batch_size": "32"})
    assert len(report.ran) == 3  # adapted: the in-distribution set and the two shifted sets; the rest reused
    by_task = {r.id.task: r for r in report.rows}
    model, _ = load_model("zoo:augmix")
    for name in ("fashion-mnist-sketch", None):
        data = load_dataset(name or "fashion-mnist", "test", limit=LIMIT)
        x, y = data.get_batch(torch.arange(LIMIT))
        adapter = adapter_args("bn-adapt").prepare(model)
        correct = 0
        for i in range(0, LIMIT, 32):  # episodic: statistics of each batch of 32 alone
            adapter.reset()
            correct += int((adapter.step(x[i:i + 32]).argmax(1) == y[i:i + 32]).sum())
        if name is None:
            row = next(r for t, r in by_task.items() if isinstance(t, AdaptedCell) and t.of == "natural")
        else:
            cell, row = next((t, r) for t, r in by_task.items() if isinstance(t, AdaptedNaturalCell) and t.shifted == name)
            assert cell.unadapted() in by_task  # the unadapted row of the same images sits next to it
        assert row.metrics["accuracy"] == correct / LIMIT, name
    source = next(r for r in rows if r.id.task == Summary("natural")).metrics
    summary = next(r for t, r in by_task.items() if isinstance(t, AdaptedSummary) and t.of == "natural").metrics
    sketch = next(r for t, r in by_task.items() if isinstance(t, AdaptedNaturalCell) and t.shifted == "fashion-mnist-sketch")
    key = "fashion-mnist-sketch"
    assert summary[f"shifted_accuracy/{key}"] == sketch.metrics["accuracy"]
    assert summary[f"adaptation_gain/{key}"] == pytest.approx(sketch.metrics["accuracy"] - source[f"shifted_accuracy/{key}"])
    slope, intercept = source[f"fit_slope/{key}"], source[f"fit_intercept/{key}"]
    id_acc = summary["in_distribution_accuracy"]
    predicted = PHI.cdf(slope * PHI.inv_cdf(clip_accuracy(id_acc, LIMIT)) + intercept)
    assert summary[f"effective_robustness/{key}"] == pytest.approx(sketch.metrics["accuracy"] - predicted)
    with Store(path) as store:
        write_report(store, tmp_path / "out", "html")
    card = next(p.read_text() for p in (tmp_path / "out").glob("model-*.html") if "small-cnn-augmix on" in p.read_text())
    assert "Under test-time adaptation" in card and "adaptation_gain" in card
    with pytest.raises(UserError, match="need --adapt"):
        evaluate_model("zoo:augmix", ["natural"], store=path, limit=LIMIT, device="cpu",
                       options={"reference": "none", "adapt_batch_size": "32"})


def test_mfr_is_the_mean_of_fp_over_the_baselines_fp(evaluated):
    path, rows = evaluated
    rows = {r.id.task: r for r in rows}
    summary = rows[Summary("stability")]
    with Store(path) as store:  # the baseline was evaluated first, on the same data and seed
        base = {r.id.task: r.metrics for r in store.tasks(checkpoint_fingerprint("zoo:erm"), suite="stability",
                                                          dataset=rows[StabilityCell("rotate")].id.dataset, seed=0)}
    ratios, t5d = [], []
    for name in SEQUENCES:
        mine, theirs = rows[StabilityCell(name)].metrics, base[StabilityCell(name)]
        assert theirs["flip_probability"] > 0 and mine["n"] == LIMIT
        ratios.append(mine["flip_probability"] / theirs["flip_probability"])
        t5d.append(mine["top5_distance"] / theirs["top5_distance"])
        assert summary.metrics[f"flip_rate/{name}"] == pytest.approx(ratios[-1])
    assert summary.metrics["mfr"] == pytest.approx(sum(ratios) / 2)
    assert summary.metrics["mt5d"] == pytest.approx(sum(t5d) / 2)
    assert summary.metrics["mean_flip_probability"] == pytest.approx(
        sum(rows[StabilityCell(n)].metrics["flip_probability"] for n in SEQUENCES) / 2)
    assert summary.artifacts["baseline"]["checkpoint"] == "zoo:erm" and "missing" not in summary.artifacts["baseline"]


def test_report_renders_both_sections_and_their_leaderboard_columns(evaluated, tmp_path):
    path, rows = evaluated
    summary = next(r for r in rows if r.id.task == Summary("natural"))
    with Store(path) as store:
        board = load_leaderboard(store)
        write_report(store, tmp_path / "out", "html")
    assert {"mean_fp", "mfr", "er_fashion-mnist-rescaled", "er_fashion-mnist-sketch"} <= set(board.column_keys())
    augmix = next(cells for ev, cells in zip(board.evaluations, board.cells, strict=True)
                  if ev.label == "small-cnn-augmix")
    assert augmix["er_fashion-mnist-rescaled"].value == summary.metrics["effective_robustness/fashion-mnist-rescaled"]
    assert augmix["mfr"].value is not None and augmix["mean_fp"].value is not None
    card = next(p.read_text() for p in (tmp_path / "out").glob("model-*.html") if "small-cnn-augmix on" in p.read_text())
    natural = card.split("<h2>Natural distribution shift (effective robustness)</h2>")[1].split("<h2>")[0]
    assert natural.count("<svg") == 2 and "probit scale" in natural and "small-cnn-pgd-at" in natural
    assert "fashion-mnist-sketch" in natural and "fit_r2" in natural and "effective_robustness ↑" in natural
    stability = card.split("<h2>Prediction stability (perturbation sequences)</h2>")[1].split("<h2>")[0]
    assert "<svg" in stability and "baseline (zoo:erm)" in stability and "rotate" in stability
    assert "mfr ↓" in stability and "translate" in stability
