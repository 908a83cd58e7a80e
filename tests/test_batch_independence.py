"""Issue 14, item 2: no number depends on the batch size. Every random draw of an evaluation is keyed
by fixed blocks of images (corruptions) or by image (attacks), so the corrupted images are bit-identical
for any batch size, and so are the stored metrics."""

from __future__ import annotations

import pytest
import torch

from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.identity import CorruptionCell
from shiftlab.evaluation import RunOptions, load_subject, make_context
from shiftlab.evaluation.blocks import block_size, rebatch
from shiftlab.evaluation.corrupted import corrupted_batches
from shiftlab.shifts import SHIFTS
from shiftlab.store import Store

BATCH_SIZES = (1, 7, 64, 256)
LIMIT = 300  # one full block of 256 28-px images and a partial one
RANDOM = [n for n in SHIFTS.names() if not SHIFTS.meta(n).deterministic]


def test_block_size_depends_on_the_image_shape_only():
    assert block_size(1, 28, 28) == 256 and block_size(3, 32, 32) == 256
    assert block_size(3, 64, 64) == 128 and block_size(3, 224, 224) == 8
    assert block_size(3, 4096, 4096) == 1


def test_rebatch_regroups_without_losing_or_reordering():
    parts = [(0, torch.arange(5), torch.arange(5)), (5, torch.arange(5, 8), torch.arange(5, 8)),
             (8, torch.arange(8, 20), torch.arange(8, 20))]
    out = list(rebatch(parts, 7))
    assert [s for s, _, _ in out] == [0, 7, 14] and [len(x) for _, x, _ in out] == [7, 7, 6]
    assert torch.equal(torch.cat([x for _, x, _ in out]), torch.arange(20))


@pytest.mark.parametrize("name", RANDOM)
def test_corrupted_images_are_identical_for_every_batch_size(name, fmnist_checkpoint, tmp_path):
    images = []
    with Store(tmp_path / "s.db") as store:
        for batch_size in BATCH_SIZES:
            subject = load_subject(fmnist_checkpoint, RunOptions(limit=LIMIT, batch_size=batch_size, device="cpu"))
            ctx = make_context(subject, store)
            batches = list(corrupted_batches(ctx, CorruptionCell(name, 3, "cifar")))
            assert all(len(x) == batch_size for _, x, _ in batches[:-1])
            images.append(torch.cat([x for _, x, _ in batches]))
    for other in images[1:]:
        assert torch.equal(images[0], other)


def metrics_by_batch_size(checkpoint, suite: str, options: dict[str, str], limit: int, store_dir):
    results = {}
    for batch_size in BATCH_SIZES:
        report = evaluate_model(checkpoint, [suite], store=store_dir / f"{suite}-{batch_size}.db", options=options,
                                limit=limit, batch_size=batch_size, device="cpu")
        results[batch_size] = {r.id.task: {k: v for k, v in r.metrics.items() if k != "seconds"} for r in report.rows}
    return results


def assert_same_metrics(results: dict[int, dict]) -> None:
    """Counts and accuracies are identical; continuous metrics (NLL, Brier, ECE) agree to float rounding:
    the backend picks its convolution kernel by batch shape, so logits differ in the last bits (about
    1e-8 relative), never the images or the random draws."""
    reference = results[BATCH_SIZES[-1]]
    assert reference
    for batch_size in BATCH_SIZES[:-1]:
        got = results[batch_size]
        assert got.keys() == reference.keys(), batch_size
        for cell, metrics in reference.items():
            assert got[cell].keys() == metrics.keys(), (batch_size, cell)
            for name, value in metrics.items():
                if name in ("accuracy", "robust_accuracy", "error", "n") or not isinstance(value, float):
                    assert got[cell][name] == value, (batch_size, cell, name)
                else:
                    assert got[cell][name] == pytest.approx(value, rel=1e-5, abs=1e-7, nan_ok=True), (batch_size, cell, name)


def test_corruption_metrics_are_identical_for_every_batch_size(fmnist_checkpoint, tmp_path):
    options = {"corruptions": "gaussian_noise,shot_noise,glass_blur,frost", "severities": "3"}
    assert_same_metrics(metrics_by_batch_size(fmnist_checkpoint, "corruptions", options, LIMIT, tmp_path))


def test_attack_metrics_are_identical_for_every_batch_size(fmnist_checkpoint, tmp_path):
    """The adversarial suite end to end (APGD-CE's random start, the sanity checks); the attacks' restarts
    and every attack's per-image randomness at batch sizes 1..256 are tested in test_attacks.py."""
    options = {"eps": "0.05", "attack": "apgd-ce"}
    assert_same_metrics(metrics_by_batch_size(fmnist_checkpoint, "adversarial", options, 40, tmp_path))
