"""Attack strength against torchattacks (test-only oracle) on real Fashion-MNIST models.

shiftlab must be at least as strong (lower robust accuracy, small tolerance) as torchattacks at the
same budgets: APGD-CE(100) vs ``torchattacks.APGD`` (+0.5 pp), and autoattack-standard vs the same
ensemble assembled from torchattacks parts at the official budgets (+0.3 pp). Note that
``torchattacks.AutoAttack(version='standard')`` runs its sub-attacks with 10 steps, not AutoAttack's
100, so the parts are assembled by hand with ``MultiAttack``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import trained_checkpoint

from shiftlab.attacks import ENSEMBLES, ThreatModel, run_attack, run_ensemble
from shiftlab.models import load_model

EPS = 0.1


def pgd_at_checkpoint() -> Path:
    """small-cnn adversarially trained (PGD-AT, Madry et al. 2018) cheaply: 12,800 images, 1 epoch, 3 steps."""
    return trained_checkpoint("small-cnn-pgdat-1ep", epochs=1, recipe="pgd-at", train_limit=12800,
                              recipe_args=(("steps", "3"),))


def data(fmnist_test, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return fmnist_test.get_batch(torch.arange(n))


def ta_remaining(model, n_queries: int):
    """AutoAttack-standard after APGD-CE, assembled from torchattacks parts at the official budgets."""
    import torchattacks as ta

    return ta.MultiAttack([
        ta.APGDT(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, n_classes=10, seed=0),
        ta.FAB(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, seed=0),
        ta.Square(model, norm="Linf", eps=EPS, n_queries=n_queries, n_restarts=1, seed=0),
    ])


def ta_adv(attack, x, y) -> torch.Tensor:
    return torch.cat([attack(x[i:i + 250], y[i:i + 250]) for i in range(0, len(x), 250)])


def ta_apgd_robust(model, x, y) -> torch.Tensor:
    """Per-point robustness (clean-correct and still correct) under torchattacks' APGD-CE(100)."""
    import torchattacks as ta

    x1 = ta_adv(ta.APGD(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, loss="ce", seed=0), x, y)
    with torch.no_grad():
        return (model(x).argmax(1) == y) & (model(x1).argmax(1) == y)


def compare(model, x, y, n_queries: int) -> dict[str, tuple[float, float]]:
    """(shiftlab, torchattacks) robust accuracy after APGD-CE(100) and after the whole standard ensemble.

    Both ensembles run on the shrinking robust set, so the APGD-CE stage is shared with the
    APGD-CE comparison (torchattacks' APGD is the expensive part: it never stops early).
    """

    res = run_ensemble(model, x, y, ThreatModel("linf", EPS), ENSEMBLES.get("autoattack-standard"),
                       torch.Generator().manual_seed(0), budgets={"n_queries": n_queries})
    ours_apgd = float((res.clean_correct & torch.tensor([b != "apgd-ce" for b in res.broken_by])).float().mean())
    robust = ta_apgd_robust(model, x, y)
    theirs_apgd = float(robust.float().mean())
    idx = robust.nonzero().flatten()
    if len(idx):
        x2 = ta_adv(ta_remaining(model, n_queries), x[idx], y[idx])
        with torch.no_grad():
            robust[idx] = model(x2).argmax(1) == y[idx]
    return {"apgd-ce": (ours_apgd, theirs_apgd), "autoattack-standard": (res.robust_accuracy, float(robust.float().mean()))}


def check(results: dict[str, tuple[float, float]], n: int) -> None:
    """Tolerances in whole images (0.5 pp for APGD-CE, 0.3 pp for the ensemble), free of float rounding."""
    ours, theirs = results["apgd-ce"]
    assert round(ours * n) <= round(theirs * n) + int(0.005 * n), results
    if "autoattack-standard" in results:
        ours, theirs = results["autoattack-standard"]
        assert round(ours * n) <= round(theirs * n) + int(0.003 * n), results


def compare_apgd(model, x, y) -> dict[str, tuple[float, float]]:
    _, broken = run_attack("apgd-ce", model, x, y, ThreatModel("linf", EPS, steps=100), torch.Generator().manual_seed(0))
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    theirs = float(ta_apgd_robust(model, x, y).float().mean())
    return {"apgd-ce": (float((clean & ~broken).float().mean()), theirs)}


def test_apgd_ce_at_least_as_strong_erm(fmnist_checkpoint, fmnist_test) -> None:
    """CI: APGD-CE(100) vs torchattacks.APGD(100), ERM model, 200 images."""
    model, _ = load_model(fmnist_checkpoint)
    check(compare_apgd(model, *data(fmnist_test, 200)), 200)


# Slow: ~300 s CPU at 200 images (over the CI budget); 0.3 pp is less than one image at n = 200. Last run (ERM,
# 200 images): APGD-CE stage 3 vs 2 robust images, whole ensemble 2 vs 1 -> FAILS by one image (see notes/attacks.md).
@pytest.mark.slow
def test_autoattack_standard_at_least_as_strong_erm(fmnist_checkpoint, fmnist_test) -> None:
    """ERM model, 200 images, official budgets (Square 5000 queries) on both sides."""
    model, _ = load_model(fmnist_checkpoint)
    check(compare(model, *data(fmnist_test, 200), 5000), 200)


@pytest.mark.slow  # the PGD-AT fixture trains first (~minutes); most points survive APGD-CE on this model
def test_at_model_ci_variant(fmnist_test) -> None:
    """AT model, 200 images, Square limited to 500 queries on both sides (the full-size test uses 5000)."""
    model, _ = load_model(pgd_at_checkpoint())
    check(compare(model, *data(fmnist_test, 200), 500), 200)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["erm", "pgd-at"])
def test_full_size_oracles(fmnist_checkpoint, fmnist_test, which: str) -> None:
    model, _ = load_model(fmnist_checkpoint if which == "erm" else pgd_at_checkpoint())
    check(compare(model, *data(fmnist_test, 1000), 5000), 1000)
