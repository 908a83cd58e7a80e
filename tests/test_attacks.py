"""Contract tests generated from the ATTACKS registry: threat set, caller state, determinism, per-image
randomness (design contract 6), sanity."""

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
from shiftlab.attacks.square import CHUNK, _propose_l2, _propose_linf
from shiftlab.attacks.targets import WAVES, over_targets, rank_waves, target_ranks
from shiftlab.core.errors import UserError
from shiftlab.core.seeding import ImageStreams

NORM_EPS = [("linf", 0.05), ("linf", 0.3), ("l2", 0.5), ("l2", 3.0)]
SMALL = dict(steps=4, restarts=2, n_queries=20, n_target_classes=2)
pytestmark = pytest.mark.usefixtures("single_thread")  # fast on a shared 2-core machine


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
    """Targets in fixed waves: each robust image meets every rank once, in rank order; a broken image
    leaves with all its copies; a pair's random stream is the same whatever the schedule."""
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    x = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 2, 2).contiguous()
    rng = ImageStreams.for_images(0, "targets", torch.arange(5))
    seen: dict[tuple[int, ...], dict[tuple[int, int], int]] = {}

    def recording(calls: list, keys_of: dict):
        def attack(owner: torch.Tensor, target: torch.Tensor,
                   streams: ImageStreams) -> tuple[torch.Tensor, torch.Tensor]:
            calls.append(list(zip(owner.tolist(), target.tolist(), strict=True)))
            keys_of.update(zip(calls[-1], streams.keys.tolist(), strict=True))
            # image 1 falls to its 2nd-ranked target, image 3 to its 4th; 0.5 marks the breaking copy
            br = ((owner == 1) & (target == target_ranks(logits, 3)[owner])) | \
                 ((owner == 3) & (target == target_ranks(logits, 5)[owner]))
            return x[owner] + 0.5 * br.view(-1, 1, 1, 1), br
        return attack

    assert [list(w) for w in rank_waves(9)] == [[2], [3, 4, 5, 6, 7, 8, 9, 10]]  # WAVES = (1, 8)
    assert [list(w) for w in rank_waves(6, (1, 2))] == [[2], [3, 4], [5, 6], [7]]
    for waves in ((1,), (1, 2), (6,), WAVES):
        calls: list[list[tuple[int, int]]] = []
        keys_of: dict[tuple[int, int], int] = {}
        x_adv, broken = over_targets(recording(calls, keys_of), x, logits, 6, rng, waves)
        assert broken.tolist() == [False, True, False, True, False]
        assert torch.equal(x_adv[broken], x[broken] + 0.5) and torch.equal(x_adv[~broken], x[~broken])
        pairs = [p for c in calls for p in c]
        assert len(pairs) == len(set(pairs))
        assert all(len(c) <= max(len(x), max(waves)) for c in calls)  # memory: about one batch per call
        for i in (0, 2, 4):  # unbroken: every one of the 6 ranks, in rank order across waves
            assert [t for o, t in pairs if o == i] == [int(target_ranks(logits[i:i + 1], r)) for r in range(2, 8)]
        # the waves do not depend on the other images: an image tries its ranks wave by wave
        ranks_per_call = [len({t for o, t in c if o == 0}) for c in calls if any(o == 0 for o, _ in c)]
        assert ranks_per_call == {(1,): [1] * 6, (1, 2): [1, 2, 2, 1], (6,): [6], WAVES: [1, 5]}[waves]
        owners = [o for o, _ in pairs]
        assert (owners.count(1), owners.count(3)) == {(1,): (2, 4), (1, 2): (3, 5), (6,): (6, 6),
                                                      WAVES: (6, 6)}[waves]
        seen[waves] = keys_of
    # the stream of a pair does not depend on the schedule (same random start batched or not)
    assert len(seen[(1,)]) == 24 and set(seen[(1,)]) <= set(seen[(1, 2)]) <= set(seen[(6,)])
    assert all(seen[(1,)][p] == seen[(1, 2)][p] == seen[(6,)][p] == seen[WAVES][p] for p in seen[(1,)])
    assert len(set(seen[(6,)].values())) == 30  # every (image, rank) pair its own stream


@pytest.mark.parametrize("name", ["apgd-t", "fab-t"])
def test_batched_targets_match_sequential_on_trained_model(name: str, fmnist_model, fmnist_test) -> None:
    """Targets one by one, in the default waves, all at once: the same points broken (a point's pairs
    run the same trajectories whatever the schedule); in the threat set and deterministic."""
    model, _ = fmnist_model
    x, y = fmnist_test.get_batch(torch.arange(64))
    threat = ThreatModel("linf", 0.04, steps=10, n_target_classes=3)
    run = apgd_targeted if name == "apgd-t" else fab_targeted
    with torch.no_grad():
        keep = model(x).argmax(1) == y
    x, y = x[keep], y[keep]
    rng = ImageStreams.for_images(0, "targets", keep.nonzero().flatten())
    with attack_mode(model, x):
        seq_x, seq = run(model, x, y, threat, rng, waves=(1,))
        bat_x, bat = run(model, x, y, threat, rng)
        all_x, every = run(model, x, y, threat, rng, waves=(3,))
        again_x, again = run(model, x, y, threat, rng)
        pred = model(bat_x).argmax(1)
    assert torch.equal(bat_x, again_x) and torch.equal(bat, again)
    assert_in_threat_set(bat_x, x, threat)
    assert bool((pred[bat] != y[bat]).all()) and torch.equal(bat_x[~bat], x[~bat])
    assert 0 < int(seq.sum()) < len(x)  # the comparison means something: neither side trivial
    assert torch.equal(bat, seq) and torch.equal(every, seq), (int(seq.sum()), int(bat.sum()), int(every.sum()))
    # rank 2 runs alone in the default waves: images it breaks get the sequential schedule's point
    first = seq & (target_ranks(model(x).detach(), 2) == model(seq_x).argmax(1))
    assert int(first.sum()) > 0
    torch.testing.assert_close(bat_x[first], seq_x[first], atol=1e-6, rtol=0)


def test_square_linf_proposal_always_changes_the_window() -> None:
    """A query that leaves an image unchanged is wasted: Linf signs are redrawn for such images. Each
    image's window is its own; the batched proposal equals the one computed image by image."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=g)
    x[:, :, :4] = 0.0  # box-clipped rows: one sign leaves them at the edge
    ops = norm_ops(ThreatModel("linf", 0.1))
    x_best = torch.where(torch.rand(64, 3, 1, 1, generator=g) < 0.5, ops.project(x + 0.1, x), ops.project(x - 0.1, x))
    words = torch.randint(0, 2**32, (64, 3), generator=g)
    for s in (1, 2, 3):
        corner = torch.randint(0, 8 - s + 1, (64, 2), generator=g)
        new = _propose_linf(x, x_best, s, corner, words, ops)
        changed = (new - x_best).flatten(1).abs().amax(1) > 0
        assert bool(changed.all())
        for j in range(64):
            vh, vw = corner[j].tolist()
            outside = new[j].clone()
            outside[:, vh:vh + s, vw:vw + s] = x_best[j, :, vh:vh + s, vw:vw + s]
            assert torch.equal(outside, x_best[j])
            one = _propose_linf(x[j:j + 1], x_best[j:j + 1], s, corner[j:j + 1], words[j:j + 1], ops)
            assert torch.equal(one[0], new[j])
        assert_in_threat_set(new, x, ThreatModel("linf", 0.1))


def test_square_l2_proposal_is_per_image() -> None:
    """L2: each image moves mass between its own two windows, with its own block orientation; the
    perturbation stays on the eps-sphere ∩ box; the batched proposal equals the one image by image."""
    g = torch.Generator().manual_seed(1)
    n, eps = 32, 1.0
    x = torch.rand(n, 2, 10, 10, generator=g) * 0.4 + 0.3  # far from the box: no clipping
    ops = norm_ops(ThreatModel("l2", eps))
    x_best = ops.random_init(x, g)
    words = torch.randint(0, 2**32, (n, 2), generator=g)
    s = 3
    corner, corner2 = torch.randint(0, 10 - s + 1, (n, 2), generator=g), torch.randint(0, 10 - s + 1, (n, 2), generator=g)
    transpose = torch.arange(n) % 2 == 0
    new = _propose_l2(x, x_best, s, corner, corner2, transpose, words, ops)
    assert_in_threat_set(new, x, ThreatModel("l2", eps), tol=1e-5)
    for j in range(n):
        one = _propose_l2(x[j:j + 1], x_best[j:j + 1], s, corner[j:j + 1], corner2[j:j + 1], transpose[j:j + 1],
                          words[j:j + 1], ops)
        torch.testing.assert_close(one[0], new[j], atol=1e-6, rtol=0)
        # outside both windows the perturbation is only rescaled (the global renormalisation to eps)
        vh, vw = corner[j].tolist()
        vh2, vw2 = corner2[j].tolist()
        keep = torch.ones(10, 10, dtype=torch.bool)
        keep[vh:vh + s, vw:vw + s] = False
        keep[vh2:vh2 + s, vw2:vw2 + s] = False
        before, after = (x_best[j] - x[j])[:, keep], (new[j] - x[j])[:, keep]
        scale = after.norm() / before.norm()
        torch.testing.assert_close(after, before * scale, atol=1e-5, rtol=0)
    # two images with the same draws but opposite orientation get transposed blocks: the flag is used
    twin = _propose_l2(x[:1].repeat(2, 1, 1, 1), x[:1].repeat(2, 1, 1, 1), s, corner[:1].repeat(2, 1),
                       corner2[:1].repeat(2, 1), torch.tensor([False, True]), words[:1].repeat(2, 1), ops)
    assert not torch.equal(twin[0], twin[1])


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


# ---------------------------------------------------------------------------------------------
# randomness keyed by image (design contract 6)

BATCH_BUDGET = dict(steps=3, restarts=2, n_queries=30, n_target_classes=2)
"""Small budgets that still run every random path: two restarts, two target waves."""
EXACT_BUDGET = {**BATCH_BUDGET, "n_queries": CHUNK + 6}  # and Square's draws for a second chunk of queries
BATCH_EPS = {"linf": 0.03, "l2": 0.5}  # about a third of the points broken at these budgets


def attack_norms() -> list[tuple[str, str]]:
    return [(name, norm.value) for name in ATTACKS.names() for norm in ATTACKS.meta(name).norms]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_per_image(norm: str) -> None:
    """An image's random start depends on its stream and the purpose only: the same in any batch, in
    any order, alone; a generator still draws for the whole batch, as adversarial training expects."""
    x = torch.rand(12, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    ops = norm_ops(ThreatModel(norm, 0.1 if norm == "linf" else 0.5))
    rng = ImageStreams.for_images(0, "start", torch.arange(100, 112))
    start = ops.random_init(x, rng, ("restart", 0))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ops.random_init(x[perm], rng.subset(perm), ("restart", 0)), start[perm], atol=0, rtol=0)
    for i in range(12):
        assert torch.equal(ops.random_init(x[i:i + 1], rng.subset(torch.tensor([i])), ("restart", 0))[0], start[i])
    assert not torch.equal(ops.random_init(x, rng, ("restart", 1)), start)  # a restart is its own purpose
    assert_in_threat_set(start, x, ThreatModel(norm, ops.eps))
    gauss = ops.gaussian_init(x, rng, 1e-3)
    assert torch.equal(ops.gaussian_init(x[3:5], rng.subset(torch.tensor([3, 4])), 1e-3), gauss[3:5])
    # the generator path draws exactly what it drew before (training randomness is per step)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    noise = torch.rand(x.shape, generator=g2) if norm == "linf" else torch.randn(x.shape, generator=g2)
    assert torch.equal(ops.random_init(x, g1), ops.start_from_noise(x, noise))
    with pytest.raises(ValueError):
        ops.random_init(x, rng.subset(torch.arange(3)))


def test_generator_is_accepted_everywhere() -> None:
    """A torch.Generator gives the same result as the streams it is converted to."""
    model = tiny_model(3).eval()
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = labels_correct(model, x)
    th = ThreatModel("l2", 0.5, **SMALL)
    for name in ATTACKS.names():
        a, ba = run_attack(name, model, x, y, th, torch.Generator().manual_seed(7))
        b, bb = run_attack(name, model, x, y, th, ImageStreams.from_generator(torch.Generator().manual_seed(7), 8))
        assert torch.equal(a, b) and torch.equal(ba, bb), name
        with attack_mode(model):
            c, bc = ATTACKS.get(name)(model, x, y, th, torch.Generator().manual_seed(7))
        assert c.shape == x.shape and bc.shape == (8,)


class OneAtATime(nn.Module):
    """A model evaluated image by image: its logits for an image never depend on the batch, so any
    batch dependence left in an attack's result comes from the attack itself."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.inner(x[i:i + 1]) for i in range(len(x))]) if len(x) else self.inner(x)


@pytest.mark.parametrize(("name", "norm"), attack_norms())
def test_attack_is_per_image_exactly(name: str, norm: str, fmnist_model, fmnist_test) -> None:
    """Bit-identical adversarial images and flags for batch sizes 1, 5 and 24 (and a shuffled batch)
    when the model's own numbers do not depend on the batch: every random draw, restart, target wave
    and Square window of an image is its own."""
    n = 24
    model = OneAtATime(fmnist_model[0])
    x, y = fmnist_test.get_batch(torch.arange(n))
    rng = ImageStreams.for_images(0, ("per-image", name, norm), torch.arange(n))
    th = ThreatModel(norm, BATCH_EPS[norm], **EXACT_BUDGET)
    ref_x, ref_b = run_attack(name, model, x, y, th, rng, batch_size=n)
    assert 0 < int(ref_b.sum()) < int((labels_correct(model, x) == y).sum())  # neither side trivial
    for bs in (1, 5):
        xa, br = run_attack(name, model, x, y, th, rng, batch_size=bs)
        assert torch.equal(xa, ref_x) and torch.equal(br, ref_b), bs
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    xa, br = run_attack(name, model, x[perm], y[perm], th, rng.subset(perm), batch_size=n)
    assert torch.equal(xa, ref_x[perm]) and torch.equal(br, ref_b[perm])


@pytest.mark.parametrize(("name", "norm"), attack_norms())
def test_batch_size_never_changes_a_result(name: str, norm: str, fmnist_model, fmnist_test) -> None:
    """256 Fashion-MNIST images on the trained fixture, one batch vs sub-batches of 64 and 7: the same
    points broken and the same adversarial images; vs batch 1 (on the first 32 images): the same
    random draws, flags agreeing on ≥ 99 % of the points.

    The adversarial images agree to the last bits only: small-cnn's CPU logits for an image depend
    on its batch in the last bits (batches of 1–3 in the convolutions; with 2 threads, the rows of a
    batch past its last multiple of 4 in the hidden linear layer; ≈ 3e-6), and an attack's batch
    shrinks as points break. Measured (256 images, 5 steps, 2 restarts, 3 targets, 50 queries, one
    thread): every flag equal at 64, 7 and 1; Linf images of FGSM, PGD, APGD-CE and APGD-T
    bit-identical at every batch size, L2 and FAB images within 1e-6 at 64 and 7; at batch 1 an
    unbroken point's best iterate can differ more (3e-4 seen for PGD L2), so only flags and draws are
    compared there. ``test_attack_is_per_image_exactly`` shows the attacks add no batch dependence.
    """
    model, _ = fmnist_model
    x, y = fmnist_test.get_batch(torch.arange(256))
    rng = ImageStreams.for_images(0, ("batch-size", name, norm), torch.arange(256))
    th = ThreatModel(norm, BATCH_EPS[norm], **BATCH_BUDGET)
    ref_x, ref_b = run_attack(name, model, x, y, th, rng, batch_size=256)
    assert 0 < int(ref_b.sum()) < 200
    for bs in (64, 7):
        xa, br = run_attack(name, model, x, y, th, rng, batch_size=bs)
        assert torch.equal(br, ref_b), (bs, int((br != ref_b).sum()))
        torch.testing.assert_close(xa, ref_x, atol=1e-6, rtol=0)
    draws: dict[int, list[tuple[object, int, bytes]]] = {}
    bits = ImageStreams.bits

    def recording(self: ImageStreams, purpose: object, shape: tuple[int, ...], device="cpu") -> torch.Tensor:
        out = bits(self, purpose, shape, device)
        for key, row in zip(self.keys.tolist(), out.cpu(), strict=True):
            draws[batch].append((purpose, key, row.numpy().tobytes()))
        return out

    flags = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ImageStreams, "bits", recording)
        for batch in (32, 1):
            draws[batch] = []
            flags[batch] = run_attack(name, model, x[:32], y[:32], th, rng.subset(torch.arange(32)), batch_size=batch)[1]
    agree = float((flags[1] == flags[32]).float().mean())
    assert agree >= 0.99, agree
    if name != "fgsm":
        assert draws[1], "a random attack drew nothing"
    assert sorted(draws[1], key=repr) == sorted(draws[32], key=repr)  # each image drew the same numbers


@pytest.mark.parametrize("name", [n for n in ATTACKS.names() if n != "fgsm"])
def test_same_seed_reproduces_different_seed_differs(name: str, fmnist_model, fmnist_test) -> None:
    """Restarts from the same seed reproduce exactly; another seed gives other random starts."""
    model, _ = fmnist_model
    x, y = fmnist_test.get_batch(torch.arange(64))
    th = ThreatModel("linf", BATCH_EPS["linf"], **BATCH_BUDGET)

    def attack(seed: int) -> tuple[torch.Tensor, torch.Tensor, list]:
        started: list[torch.Tensor] = []
        init = type(norm_ops(th)).random_init

        def recording(ops, xs, rng, purpose="start"):
            started.append(init(ops, xs, rng, purpose))
            return started[-1]

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(type(norm_ops(th)), "random_init", recording)
            xa, br = run_attack(name, model, x, y, th, ImageStreams.for_images(seed, "seeds", torch.arange(64)))
        return xa, br, started

    a, b, c = attack(0), attack(0), attack(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    if name == "square":  # the search starts from its own stripes, not a NormOps start
        assert not torch.equal(a[0], c[0])
        return
    assert a[2] and len(a[2]) == len(b[2]) and all(torch.equal(s, t) for s, t in zip(a[2], b[2], strict=True))
    assert not torch.equal(a[2][0], c[2][0])


def test_ensemble_is_per_image(fmnist_model, fmnist_test) -> None:
    """An ensemble on 128 images: one batch or batches of 7 give the same breakdown and images; each
    attack of the list (a repeated one too) draws from its own streams."""
    model, _ = fmnist_model
    x, y = fmnist_test.get_batch(torch.arange(128))
    rng = ImageStreams.for_images(0, "ensemble", torch.arange(128))
    spec = (("fgsm", ()), ("pgd", (("steps", 2),)), ("pgd", (("steps", 2),)),
            ("apgd-t", (("steps", 4), ("n_target_classes", 2))), ("fab-t", (("steps", 4), ("n_target_classes", 2))),
            ("square", (("n_queries", 10),)))
    whole = run_ensemble(model, x, y, ThreatModel("linf", 0.03), spec, rng, 128)
    small = run_ensemble(model, x, y, ThreatModel("linf", 0.03), spec, rng, 7)
    assert whole.broken_by == small.broken_by and torch.equal(whole.robust, small.robust)
    assert len({b for b in whole.broken_by if b is not None}) >= 3  # several attacks took part
    torch.testing.assert_close(whole.x_adv, small.x_adv, atol=1e-6, rtol=0)
    keys: list[set[int]] = []
    bits = ImageStreams.bits

    def recording(self: ImageStreams, purpose: object, shape: tuple[int, ...], device="cpu") -> torch.Tensor:
        if purpose == ("restart", 0):
            keys.append(set(self.keys.tolist()))
        return bits(self, purpose, shape, device)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ImageStreams, "bits", recording)
        run_ensemble(model, x[:16], y[:16], ThreatModel("linf", 0.005), (("pgd", ()), ("pgd", ()), ("apgd-ce", ())),
                     rng.subset(torch.arange(16)), budgets={"steps": 1})
    assert len(keys) == 3 and not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
