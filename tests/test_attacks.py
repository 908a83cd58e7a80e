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
    assert_in_threat_set,
    attack_mode,
    check_model,
    norm_ops,
    run_attack,
    run_ensemble,
)
from shiftlab.attacks.apgd import apgd_targeted
from shiftlab.attacks.fab import fab_targeted
from shiftlab.attacks.square import _propose_linf
from shiftlab.attacks.targets import over_targets, target_ranks
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


def test_over_targets_tries_every_target_until_broken() -> None:
    """Batched targets: each robust image meets every rank once (same seed per pair whatever the
    schedule); a broken image leaves with all its copies."""
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    x = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 2).contiguous()
    seen: dict[int, dict[tuple[int, int], int]] = {}

    def recording(calls: list, seeds_of: dict):
        def attack(owner: torch.Tensor, target: torch.Tensor, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            calls.append(list(zip(owner.tolist(), target.tolist(), strict=True)))
            seeds_of.update(zip(calls[-1], seeds, strict=True))
            # image 1 falls to its 2nd-ranked target, image 3 to its 4th; 0.5 marks the breaking copy
            br = ((owner == 1) & (target == target_ranks(logits, 3)[owner])) | \
                 ((owner == 3) & (target == target_ranks(logits, 5)[owner]))
            return x[owner] + 0.5 * br.view(-1, 1, 1, 1), br
        return attack

    for max_pairs in (1, 12, 256):
        calls: list[list[tuple[int, int]]] = []
        seeds_of: dict[tuple[int, int], int] = {}
        x_adv, broken = over_targets(recording(calls, seeds_of), x, logits, 6, torch.Generator().manual_seed(3),
                                     max_pairs)
        assert broken.tolist() == [False, True, False, True, False]
        assert torch.equal(x_adv[broken], x[broken] + 0.5) and torch.equal(x_adv[~broken], x[~broken])
        pairs = [p for c in calls for p in c]
        assert len(pairs) == len(set(pairs))
        for i in (0, 2, 4):  # unbroken: every one of the 6 ranks, in rank order across waves
            assert [t for o, t in pairs if o == i] == [int(target_ranks(logits[i:i + 1], r)) for r in range(2, 8)]
        # waves: as many ranks as max_pairs // (images still robust) allows, at least one
        ranks_per_call = [len({t for o, t in c if o == 0}) for c in calls]
        assert ranks_per_call == {1: [1] * 6, 12: [2, 3, 1], 256: [6]}[max_pairs]
        owners = [o for o, _ in pairs]
        assert (owners.count(1), owners.count(3)) == {1: (2, 4), 12: (2, 5), 256: (6, 6)}[max_pairs]
        seen[max_pairs] = seeds_of
    # the seed of a pair does not depend on the schedule (same random start batched or not)
    assert len(seen[1]) == 24 and set(seen[1]) <= set(seen[12]) <= set(seen[256])
    assert all(seen[1][p] == seen[12][p] == seen[256][p] for p in seen[1])


@pytest.mark.parametrize("name", ["apgd-t", "fab-t"])
def test_batched_targets_match_sequential_on_trained_model(name: str, fmnist_model, fmnist_test) -> None:
    """All targets in one batch: in the threat set, deterministic, breaks at least as many points as one by one."""
    model, _ = fmnist_model
    x, y = fmnist_test.get_batch(torch.arange(64))
    threat = ThreatModel("linf", 0.04, steps=10, n_target_classes=3)
    run = apgd_targeted if name == "apgd-t" else fab_targeted
    with torch.no_grad():
        keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    with attack_mode(model, x):
        seq_x, seq = run(model, x, y, threat, torch.Generator().manual_seed(0), max_pairs=1)
        bat_x, bat = run(model, x, y, threat, torch.Generator().manual_seed(0), max_pairs=256)
        again_x, again = run(model, x, y, threat, torch.Generator().manual_seed(0), max_pairs=256)
        pred = model(bat_x).argmax(1)
    assert torch.equal(bat_x, again_x) and torch.equal(bat, again)
    assert_in_threat_set(bat_x, x, threat)
    assert bool((pred[bat] != y[bat]).all()) and torch.equal(bat_x[~bat], x[~bat])
    assert 0 < int(seq.sum()) < len(x)  # the comparison means something: neither side trivial
    assert int(bat.sum()) >= int(seq.sum()), (int(bat.sum()), int(seq.sum()))


def test_square_linf_proposal_always_changes_the_window() -> None:
    """A query that leaves an image unchanged is wasted: Linf signs are redrawn for such images."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    x[:, :, :4] = 0.0  # box-clipped rows: one sign leaves them at the edge
    ops = norm_ops(ThreatModel("linf", 0.1))
    x_best = ops.random_init(x, g)
    x_best = torch.where(torch.rand(64, 3, 1, 1, generator=g) < 0.5, ops.project(x + 0.1, x), ops.project(x - 0.1, x))
    for s, vh, vw in ((1, 0, 0), (2, 1, 3), (3, 5, 5)):
        new = _propose_linf(x, x_best, s, vh, vw, ops, g)
        changed = (new - x_best).flatten(1).abs().amax(1) > 0
        assert bool(changed.all())
        outside = new.clone()
        outside[:, :, vh:vh + s, vw:vw + s] = x_best[:, :, vh:vh + s, vw:vw + s]
        assert torch.equal(outside, x_best)
        assert_in_threat_set(new, x, ThreatModel("linf", 0.1))


def test_attack_mode_restores_parameter_storage() -> None:
    """The channels-last layout inside an attack is invisible to the caller afterwards."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before = [(p.data_ptr(), p.stride()) for p in model.parameters()]
    with torch.no_grad():
        ref = model(x)
    with attack_mode(model, x):
        assert model[2].weight.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(model(x), ref)
    run_attack("apgd-ce", model, x, ref.argmax(1), ThreatModel("linf", 0.1, steps=3), torch.Generator())
    assert [(p.data_ptr(), p.stride()) for p in model.parameters()] == before

    class ViewsActivations(nn.Module):  # breaks in channels-last: the layout must be left alone
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.head = nn.Conv2d(3, 4, 3), nn.Linear(4 * 6 * 6, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(x).view(len(x), -1))

    viewing = ViewsActivations()
    with attack_mode(viewing, x):
        assert viewing.conv.weight.is_contiguous()
    x_adv, _ = run_attack("apgd-ce", viewing, x, viewing(x).argmax(1), ThreatModel("linf", 0.1, steps=3),
                          torch.Generator())
    assert x_adv.shape == x.shape
