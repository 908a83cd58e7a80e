"""Contract tests generated from the ATTACKS registry: threat set, caller state, determinism, sanity."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shiftlab.attacks import (
    ATTACKS,
    ENSEMBLES,
    Norm,
    ThreatModel,
    check_model,
    norm_ops,
    run_attack,
    run_ensemble,
)
from shiftlab.errors import UserError

NORM_EPS = [("linf", 0.05), ("linf", 0.3), ("l2", 0.5), ("l2", 3.0)]
SMALL = dict(steps=4, restarts=2, n_queries=20, n_target_classes=2)


def tiny_model(seed: int, classes: int = 5) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                      nn.Flatten(), nn.Linear(4 * 8 * 8, classes))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return m


def labels_correct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x).argmax(1)


@pytest.mark.parametrize("name", ATTACKS.names())
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.integers(0, len(NORM_EPS) - 1), train_mode=st.booleans())
def test_threat_set_and_caller_state(name: str, seed: int, which: int, train_mode: bool) -> None:
    norm, eps = NORM_EPS[which]
    model = tiny_model(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 8, 8, generator=g)
    y = labels_correct(model, x)
    y[:2] = (y[:2] + 1) % 5  # two points misclassified from the start
    model.train(train_mode)
    frozen = list(model.parameters())[0]
    frozen.requires_grad_(False)
    x_adv, broken = run_attack(name, model, x, y, ThreatModel(norm, eps, **SMALL), g, batch_size=4)
    dist = norm_ops(ThreatModel(norm, eps)).norm_of(x_adv - x)
    assert float(dist.max()) <= eps + 1e-6
    assert bool(((x_adv >= 0) & (x_adv <= 1)).all())
    assert torch.equal(x_adv[:2], x[:2]) and not bool(broken[:2].any())  # broken points are not attacked
    assert all(m.training == train_mode for m in model.modules())
    assert not frozen.requires_grad and all(p.requires_grad for p in list(model.parameters())[1:])
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert bool((model(x_adv[broken]).argmax(1) != y[broken]).all())


@pytest.mark.parametrize("name", ATTACKS.names())
def test_deterministic_per_seed(name: str) -> None:
    model = tiny_model(3).eval()
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = labels_correct(model, x)
    th = ThreatModel("linf", 0.1, **SMALL)
    a, _ = run_attack(name, model, x, y, th, torch.Generator().manual_seed(7))
    b, _ = run_attack(name, model, x, y, th, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_ensemble_shrinking_set_and_breakdown() -> None:
    model = tiny_model(5).eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = labels_correct(model, x)
    res = run_ensemble(model, x, y, ThreatModel("linf", 0.1), ENSEMBLES.get("autoattack-standard"),
                       torch.Generator().manual_seed(0), budgets=SMALL)
    names = [n for n, _ in ENSEMBLES.get("autoattack-standard")]
    assert all((b is None) == bool(r) for b, r in zip(res.broken_by, res.robust.tolist(), strict=True))
    assert all(b is None or b in names for b in res.broken_by)
    with torch.no_grad():
        assert torch.equal(model(res.x_adv).argmax(1) == y, res.robust)


def test_threat_model_validation() -> None:
    assert ThreatModel("LINF", 0.1).norm is Norm.LINF
    for bad in (dict(norm="l3", eps=0.1), dict(norm="linf", eps=0.0), dict(norm="linf", eps=8.0),
                dict(norm="l2", eps=float("nan")), dict(norm="linf", eps=0.1, steps=0),
                dict(norm="linf", eps=0.1, n_queries=-1), dict(norm="linf", eps=0.1, step_size=-1.0)):
        with pytest.raises(UserError):
            ThreatModel(**bad)
    with pytest.raises(UserError):
        run_attack("apgd-cee", tiny_model(0), torch.rand(1, 1, 8, 8), torch.zeros(1, dtype=torch.long),
                   ThreatModel("linf", 0.1), torch.Generator())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_hyperplane_step_is_feasible_and_minimal(norm: str) -> None:
    g = torch.Generator().manual_seed(0)
    ops = norm_ops(ThreatModel(norm, 1.0))
    x = torch.rand(64, 20, generator=g) * 0.6 + 0.2
    w = torch.randn(64, 20, generator=g)
    b = (w * x).sum(1) + 0.05 * torch.randn(64, generator=g)  # reachable inside the box
    d = ops.hyperplane_step(x, w, b)
    torch.testing.assert_close((w * (x + d)).sum(1), b, atol=1e-4, rtol=0)
    assert bool(((x + d >= -1e-6) & (x + d <= 1 + 1e-6)).all())
    # far from the box edges, the constrained projection equals the unconstrained closed form
    r = (b - (w * x).sum(1))[:, None]
    free = r * w / (w * w).sum(1, keepdim=True) if norm == "l2" else r * torch.sign(w) / w.abs().sum(1, keepdim=True)
    inside = ((x + free >= 0) & (x + free <= 1)).all(1)
    torch.testing.assert_close(d[inside], free[inside], atol=1e-5, rtol=0)


class Softmaxed(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).softmax(1)


class Noisy(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 0.1 * torch.randn_like(x))


class Flat(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 0) + 0.5)  # zero input gradient everywhere


def test_sanity_checks_flag_broken_models() -> None:
    base = tiny_model(2)
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = labels_correct(base, x)
    ok = check_model(base, x, y, 3, targeted=True)
    assert ok.deterministic and ok.outputs_logits and ok.gradients_nonzero and not ok.messages
    assert not check_model(Softmaxed(base), x, y).outputs_logits
    assert not check_model(Noisy(base), x, y).deterministic
    assert not check_model(Flat(base), x, y).gradients_nonzero
    assert not check_model(base, x, y, 9, targeted=True).enough_classes
    with pytest.raises(UserError):
        check_model(tiny_model(0, classes=3), x, y % 3, 2, targeted=True)
