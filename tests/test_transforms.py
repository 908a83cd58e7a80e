"""Contract tests generated from the TRANSFORMS registry (spatial and Fourier-basis shifts), their exact
special cases, the Engstrom et al. 2019 grid, the ImageNet-P sequences and the top-5 distance oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from shiftlab.core.errors import UserError
from shiftlab.shifts import SEQUENCES, SHIFTS, TRANSFORMS
from shiftlab.shifts.fourier import FourierArgs, basis_frequencies, fourier_basis, mirror
from shiftlab.shifts.sequences import (
    flip_probability_noise,
    flip_probability_steps,
    rank_distance,
    top5_distance,
)
from shiftlab.shifts.spatial import (
    CanvasArgs,
    RotateArgs,
    SpatialArgs,
    TranslateArgs,
    affine_params,
    apply_affine,
    canvas_reach,
    engstrom_grid,
    engstrom_limits,
    shrink,
)
from shiftlab.shifts.transforms import cat_params, repeat_images

NAMES = TRANSFORMS.names()


def test_registry_and_separation_from_the_corruptions():
    assert NAMES == ["fourier-basis", "rotate", "translate", "spatial", "canvas-translate"]
    assert not set(NAMES) & set(SHIFTS.names())  # never cells of the corruption grid
    assert {TRANSFORMS.meta(n).family for n in NAMES} == {"spatial", "frequency"}
    assert all(TRANSFORMS.meta(n).arxiv for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4, deadline=None)
@given(channels=st.sampled_from([1, 3]), size=st.sampled_from([28, 33]), seed=st.integers(0, 2**31),
       double=st.booleans())
def test_contract(name, channels, size, seed, double):
    dtype = torch.float64 if double else torch.float32
    x = torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    fn, args = TRANSFORMS.get(name), TRANSFORMS.meta(name).example
    state = torch.random.get_rng_state()
    y1 = fn(x, args, torch.Generator().manual_seed(seed))
    y2 = fn(x, args, torch.Generator().manual_seed(seed))
    assert torch.equal(torch.random.get_rng_state(), state), "global torch RNG touched"
    assert y1.shape == x.shape and y1.dtype == dtype and y1.device == x.device
    assert torch.isfinite(y1).all() and y1.min() >= 0 and y1.max() <= 1
    assert torch.equal(y1, y2), "same seed must give bit-identical output"
    params = fn.sample_params(x, args, torch.Generator().manual_seed(seed))
    assert torch.equal(fn.apply(x, params), y1), "the two phases replay the composed call"
    # another seed may repeat a coarse draw (fourier-basis draws one sign per image and channel: three images
    # of one channel repeat with probability 1/8), so a random transform must differ for one of 8 seeds
    others = [fn(x, args, torch.Generator().manual_seed(seed + k)) for k in range(1, 9)]
    assert all(torch.equal(o, y1) for o in others) == TRANSFORMS.meta(name).deterministic


@pytest.mark.parametrize("name", NAMES)
def test_batched_params_equal_one_call_per_batch(name):
    """Params of several draws joined with cat_params transform the repeated images exactly as separate calls."""
    x = torch.rand(4, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    fn, args = TRANSFORMS.get(name), TRANSFORMS.meta(name).example
    parts = [fn.sample_params(x, args, torch.Generator().manual_seed(s)) for s in range(3)]
    joined = fn.apply(repeat_images(x, 3), cat_params(parts))
    separate = torch.cat([fn.apply(x, p) for p in parts])
    assert torch.equal(joined, separate)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    fn, args = TRANSFORMS.get(name), TRANSFORMS.meta(name).example
    params = fn.sample_params(x, args, torch.Generator().manual_seed(5))
    gpu = fn.apply(x.cuda(), params).cpu()
    assert (fn.apply(x, params) - gpu).abs().max() < 1e-5


def test_rotation_and_translation_by_zero_are_the_identity():
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    g = torch.Generator()
    assert torch.equal(TRANSFORMS.get("rotate")(x, RotateArgs((0.0, 0.0)), g), x)
    assert torch.equal(TRANSFORMS.get("translate")(x, TranslateArgs((0.0, 0.0), (0.0, 0.0)), g), x)
    assert torch.equal(TRANSFORMS.get("spatial")(x, SpatialArgs((0.0, 0.0), (0.0, 0.0), (0.0, 0.0)), g), x)
    for fill in ("zero", "reflect"):
        assert torch.equal(TRANSFORMS.get("canvas-translate")(x, CanvasArgs(1.0, (0, 0), (0, 0), fill), g), x)


def test_whole_pixel_translation_is_an_exact_shift_with_black_fill():
    x = torch.rand(2, 1, 10, 12, generator=torch.Generator().manual_seed(0))
    out = TRANSFORMS.get("translate")(x, TranslateArgs((3.0, 3.0), (-2.0, -2.0)), torch.Generator())
    expected = torch.zeros_like(x)
    expected[:, :, :8, 3:] = x[:, :, 2:, :9]
    assert torch.equal(out, expected)
    # the canvas at scale 1 with black fill is the same whole-pixel shift
    canvas = TRANSFORMS.get("canvas-translate")(x, CanvasArgs(1.0, (3, 3), (-2, -2), "zero"), torch.Generator())
    assert torch.equal(canvas, expected)


def test_rotation_by_90_degrees_is_rot90_and_positive_is_counter_clockwise():
    x = torch.rand(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    out = TRANSFORMS.get("rotate")(x, RotateArgs((90.0, 90.0)), torch.Generator())
    torch.testing.assert_close(out, torch.rot90(x, 1, (2, 3)), atol=1e-6, rtol=0)
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 8] = 1.0  # right of the centre
    turned = TRANSFORMS.get("rotate")(dot, RotateArgs((90.0, 90.0)), torch.Generator())
    assert turned[0, 0, 0, 4] == pytest.approx(1.0)  # now above it


def test_random_draws_stay_in_their_ranges():
    x = torch.rand(500, 1, 8, 8)
    p = TRANSFORMS.get("spatial").sample_params(x, SpatialArgs((-30, 30), (-2, 1), (0, 3)), torch.Generator())
    angles = torch.rad2deg(torch.atan2(p.matrix[:, 0, 1], p.matrix[:, 0, 0]))
    assert angles.min() >= -30 and angles.max() <= 30 and angles.std() > 10
    assert p.shift[:, 0].min() >= -2 and p.shift[:, 0].max() <= 1 and p.shift[:, 1].min() >= 0
    c = TRANSFORMS.get("canvas-translate").sample_params(x, CanvasArgs(0.5, (-2, 2), (1, 1)), torch.Generator())
    assert set(c.offset[:, 0].tolist()) == {-2, -1, 0, 1, 2} and set(c.offset[:, 1].tolist()) == {1}


def test_canvas_keeps_the_whole_object_within_reach_and_reflect_mirrors():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    reach = canvas_reach(28, 28, 0.75)
    assert reach == (3, 3)  # a 21 px object on a 28 px canvas
    obj = shrink(x, 0.75)
    for dx, dy in [(0, 0), (3, -3), (-3, 2)]:
        out = TRANSFORMS.get("canvas-translate")(x, CanvasArgs(0.75, (dx, dx), (dy, dy)), torch.Generator())
        torch.testing.assert_close(out.sum((1, 2, 3)), obj.sum((1, 2, 3)), atol=1e-4, rtol=0)
        top, left = 3 + dy, 3 + dx
        assert torch.equal(out[:, :, top:top + 21, left:left + 21], obj)
    mirrored = TRANSFORMS.get("canvas-translate")(x, CanvasArgs(0.75, (0, 0), (0, 0), "reflect"), torch.Generator())
    assert torch.equal(mirrored[:, :, 3:24, 3:24], obj)
    assert torch.equal(mirrored[:, :, 3:24, 2], obj[:, :, :, 1])  # the column left of the object mirrors column 1


def test_bad_arguments_are_user_errors():
    x = torch.rand(1, 1, 8, 8)
    for bad in (lambda: RotateArgs((5.0, -5.0)), lambda: TranslateArgs((0.0, math.inf)),
                lambda: CanvasArgs(1.5), lambda: CanvasArgs(0.5, (0.5, 1)), lambda: CanvasArgs(fill="wrap"),
                lambda: FourierArgs(1, 1, -1.0)):
        with pytest.raises(UserError):
            bad()
    with pytest.raises(UserError):
        TRANSFORMS.get("rotate")(x, TranslateArgs(), torch.Generator())
    with pytest.raises(UserError):
        TRANSFORMS.get("fourier-basis")(x, FourierArgs(5, 0), torch.Generator())  # 8 px: frequencies -4..3
    with pytest.raises(UserError):
        TRANSFORMS.get("rotate")((x * 255).to(torch.uint8), RotateArgs(), torch.Generator())


def test_engstrom_grid_is_reproduced_exactly():
    assert engstrom_limits(32, 32) == (30.0, 3.0, 3.0)
    grid = engstrom_grid(*engstrom_limits(32, 32))
    assert len(grid) == 125
    assert sorted({a for a, _, _ in grid}) == [-30.0, -15.0, 0.0, 15.0, 30.0]
    assert sorted({dx for _, dx, _ in grid}) == [-3.0, -1.5, 0.0, 1.5, 3.0] == sorted({dy for _, _, dy in grid})
    for rotations, translations in ((5, 5), (31, 5), (3, 7)):
        got = engstrom_grid(30.0, 2.625, 2.625, rotations, translations)
        want = [(a, x, y) for a in np.linspace(-30, 30, rotations) for x in np.linspace(-2.625, 2.625, translations)
                for y in np.linspace(-2.625, 2.625, translations)]
        assert got == [tuple(float(v) for v in w) for w in want]


@pytest.mark.parametrize("size", [(28, 28), (8, 8), (5, 7), (32, 16)])
def test_fourier_basis_is_real_unit_norm_and_supported_on_its_frequency_pair(size):
    h, w = size
    freqs = basis_frequencies(h, w)
    assert len(freqs) == (h * w + sum(1 for i in range(-(h // 2), h - h // 2) for j in range(-(w // 2), w - w // 2)
                                      if (mirror(i, h), mirror(j, w)) == (i, j))) // 2
    basis = fourier_basis(h, w, torch.tensor(freqs), torch.float64)
    torch.testing.assert_close(basis.square().sum((1, 2)), torch.ones(len(freqs), dtype=torch.float64))
    for (i, j), u in zip(freqs, basis, strict=True):
        # the authors' construction: (1+i)/2 and (1-i)/2 at the pair in the centred spectrum
        spectrum = torch.zeros(h, w, dtype=torch.complex128)
        a, b = i + h // 2, j + w // 2
        ma, mb = mirror(i, h) + h // 2, mirror(j, w) + w // 2
        if (a, b) == (ma, mb):
            spectrum[a, b] = 1.0
        else:
            spectrum[a, b], spectrum[ma, mb] = 0.5 + 0.5j, 0.5 - 0.5j
        image = torch.fft.ifft2(torch.fft.ifftshift(spectrum)) * math.sqrt(h * w)
        assert image.imag.abs().max() < 1e-12, "the basis image is real"
        torch.testing.assert_close(u, image.real, atol=1e-12, rtol=0)
        support = torch.fft.fftshift(torch.fft.fft2(u)).abs() > 1e-9
        assert set(map(tuple, support.nonzero().tolist())) == {(a, b), (ma, mb)}


def test_fourier_noise_has_norm_r_per_channel_and_random_signs():
    x = torch.full((64, 3, 16, 16), 0.5)
    args = FourierArgs(2, -3, 1.5)
    params = TRANSFORMS.get("fourier-basis").sample_params(x, args, torch.Generator().manual_seed(0))
    out = TRANSFORMS.get("fourier-basis").apply(x, params)
    torch.testing.assert_close((out - x).square().sum((2, 3)).sqrt(), torch.full((64, 3), 1.5), atol=1e-5, rtol=0)
    assert set(params.sign.unique().tolist()) == {-1.0, 1.0}
    assert basis_frequencies(28, 28, 2)[:3] == [(-14, -14), (-14, -12), (-14, -10)]
    assert len(basis_frequencies(28, 28, 2)) == (196 + 4) // 2


def test_sequences_have_at_least_ten_frames_and_are_seeded():
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for name in SEQUENCES.names():
        seq = SEQUENCES.get(name)
        assert seq.count(16, 16) >= 10 and seq.count(28, 28) >= 10 and seq.count(224, 224) >= 10
        gens = [torch.Generator().manual_seed(k) for k in range(seq.count(16, 16))]
        frames = seq.frames(x, gens)
        again = seq.frames(x, [torch.Generator().manual_seed(k) for k in range(seq.count(16, 16))])
        assert all(torch.equal(a, b) for a, b in zip(frames, again, strict=True))
        assert all(f.shape == x.shape and f.min() >= 0 and f.max() <= 1 for f in frames)
        assert any(not torch.equal(f, frames[0]) for f in frames[1:]), name
        if seq.noise:
            assert torch.equal(frames[0], x)


def test_flip_probability_of_a_constant_prediction_is_zero():
    constant = torch.full((31, 50), 3)
    assert flip_probability_noise(constant).eq(0).all() and flip_probability_steps(constant).eq(0).all()
    logits = torch.randn(1, 50, 10, generator=torch.Generator().manual_seed(0)).expand(31, 50, 10)
    assert rank_distance(logits, True).eq(0).all() and rank_distance(logits, False).eq(0).all()
    alternating = torch.tensor([[0], [1], [0], [1]])
    assert flip_probability_steps(alternating).item() == 1.0
    assert flip_probability_noise(alternating).item() == pytest.approx(2 / 3)  # frames 1 and 3 differ from frame 0


def reference_top5_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The CIFAR-10-P evaluation's ``dist(perm2[perm1_inv], 'top5')`` for two frames' logits."""
    k = len(a)
    cum_sum_top5 = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (k - 1 - 5)))
    perm1, perm2 = rankdata(-a, method="ordinal"), rankdata(-b, method="ordinal")
    sigma = perm2[np.argsort(perm1)]
    return float(np.sum(np.abs(cum_sum_top5[:5] - cum_sum_top5[sigma - 1][:5])))


@pytest.mark.parametrize("classes", [6, 10, 100])
def test_top5_distance_matches_the_reference_evaluation(classes):
    g = torch.Generator().manual_seed(classes)
    a = torch.randn(300, classes, generator=g, dtype=torch.float64)
    b = a + torch.randn(300, classes, generator=g, dtype=torch.float64) * torch.rand(300, 1, generator=g,
                                                                                      dtype=torch.float64)
    b[:20] = a[:20].round()  # ties
    ours = top5_distance(a, b)
    for n in range(300):
        assert ours[n].item() == reference_top5_distance(a[n].numpy(), b[n].numpy()), n
    assert ours.max() > 0


def test_affine_composition_and_shear():
    x = torch.rand(1, 1, 15, 15, generator=torch.Generator().manual_seed(0))
    one = torch.ones(1, dtype=torch.float64)
    assert torch.equal(apply_affine(x, affine_params(scale=one)), x)
    assert torch.equal(apply_affine(x, affine_params(shear=0 * one)), x)
    zoom = apply_affine(x, affine_params(scale=2 * one))
    assert zoom[0, 0, 7, 7] == x[0, 0, 7, 7]  # the centre stays
    sheared = apply_affine(torch.ones(1, 1, 15, 15), affine_params(shear=45 * one))
    assert sheared[0, 0, 7].eq(1).all() and sheared[0, 0, 0, :7].sum() < 7  # the centre row stays, the top moves
