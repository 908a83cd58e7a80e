"""shiftlab's corruptions against imagecorruptions 1.1.2 (ImageNet-C parameters) on real Fashion-MNIST.

Images: the first N Fashion-MNIST test images, bilinearly resized to 224 px, stacked to 3 channels,
quantised to uint8 (what imagecorruptions takes). Both outputs are truncated to uint8 as
``imagecorruptions.corrupt`` does.
- deterministic corruptions: per pixel, |ours - ref| ≤ 1 grey level (1/255) everywhere;
- random corruptions: per severity, mean and std of x' - x agree: |Δmean| ≤ 0.01 + 4·SE (SE from the
  per-image means of both sets) and |Δstd| ≤ 12 % of the reference std + 0.005;
- accuracy of the fixed small-cnn (images area-downsampled back to 28 px, identically for both) differs
  by ≤ 3 percentage points per (corruption, severity).
CI runs a small version; the full one (N = 500; glass_blur N = 40, its reference takes 2-4 s per image;
``SHIFTLAB_ORACLE_N`` overrides N)
is marked slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from imagecorruptions_oracle import corrupt as reference_corrupt  # noqa: I001  (tests/ helper)

from shiftlab.shifts import SHIFTS

DETERMINISTIC = [n for n in SHIFTS.names() if SHIFTS.meta(n).deterministic]
RANDOM = [n for n in SHIFTS.names() if not SHIFTS.meta(n).deterministic]
# glass_blur is compared on 40 images only in the slow test (its reference takes 2-4 s per image), so it
# gets a wider distribution tolerance. frost (procedural texture, not the reference's photographs) passes
# the common tolerance at every severity on 500 images (session 3, notes/corruptions.md).
LOOSE = {"glass_blur": 2.0}


pytestmark = pytest.mark.usefixtures("single_thread")


def images224(dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = dataset.get_batch(torch.arange(n))
    x = F.interpolate(x, size=224, mode="bilinear", align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
    return torch.round(x * 255).to(torch.uint8), y


def ours(u8: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    out = []
    for i, chunk in enumerate(u8.split(64)):
        y = SHIFTS.get(name)(chunk.float() / 255, severity, torch.Generator().manual_seed(seed + i), "imagenet")
        out.append(torch.floor(y * 255 + 1e-4).to(torch.uint8))  # np.uint8 truncation (float noise guard)
    return torch.cat(out)


def reference(u8: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    ref = reference_corrupt(u8.permute(0, 2, 3, 1).numpy(), name, severity, seed)
    return torch.from_numpy(np.ascontiguousarray(ref)).permute(0, 3, 1, 2)


def pairs(u8, name, severities):
    """{severity: (ours, reference)} uint8 N×3×224×224, both seeded with 0."""
    return {s: (ours(u8, name, s, 0), reference(u8, name, s, 0)) for s in severities}


def check_per_pixel(name, corrupted):
    for s, (o, r) in corrupted.items():
        diff = (o.int() - r.int()).abs()
        assert diff.max() <= 1, f"{name} s{s}: max |Δ| {diff.max()} grey levels"


def check_distribution(u8, name, corrupted):
    x = u8.double() / 255
    k = LOOSE.get(name, 1.0)
    stats = {}
    for s, (o, r) in corrupted.items():
        d_ours = o.double() / 255 - x
        d_ref = r.double() / 255 - x
        m_o, m_r = d_ours.mean((1, 2, 3)), d_ref.mean((1, 2, 3))
        se = ((m_o.var() + m_r.var()) / len(u8)).sqrt().item()
        so, sr = d_ours.std().item(), d_ref.std().item()
        stats[s] = (round(m_o.mean().item(), 4), round(m_r.mean().item(), 4), round(so, 4), round(sr, 4))
        assert abs(m_o.mean() - m_r.mean()).item() <= k * 0.01 + 4 * se, \
            f"{name} s{s}: mean {m_o.mean():.4f} vs ref {m_r.mean():.4f} (SE {se:.4f})"
        assert abs(so - sr) <= k * 0.12 * sr + 0.005, f"{name} s{s}: std {so:.4f} vs ref {sr:.4f}"
    return stats


def check_accuracy(labels, model, name, corrupted):
    def accuracy(images: torch.Tensor) -> float:
        small = F.interpolate(images.float() / 255, size=28, mode="area")[:, :1]
        with torch.inference_mode():
            return (model(small).argmax(1) == labels).double().mean().item()

    gaps = {s: round(100 * (accuracy(o) - accuracy(r)), 2) for s, (o, r) in corrupted.items()}
    assert all(abs(g) <= 3.0 for g in gaps.values()), f"{name}: accuracy gaps (pp) by severity {gaps}"
    return gaps


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_per_pixel_ci(name, fmnist_test):
    u8, _ = images224(fmnist_test, 4)
    check_per_pixel(name, pairs(u8, name, (1, 3, 5)))


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                                  "motion_blur", "fog", "snow", "elastic_transform", "frost", "spatter"])
def test_random_distribution_ci(name, fmnist_test):
    u8, _ = images224(fmnist_test, 16)
    check_distribution(u8, name, pairs(u8, name, (1, 5)))


@pytest.mark.parametrize("name", ["contrast", "gaussian_noise"])
def test_accuracy_gap_ci(name, fmnist_test, fmnist_model):
    model, _ = fmnist_model
    u8, labels = images224(fmnist_test, 100)
    check_accuracy(labels, model, name, pairs(u8, name, (1, 3, 5)))


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIFTS.names())
def test_full_oracle(name, fmnist_test, fmnist_model):
    model, _ = fmnist_model
    n = int(os.environ.get("SHIFTLAB_ORACLE_N", 500))
    n = min(n, 40) if name == "glass_blur" else n
    u8, labels = images224(fmnist_test, n)
    corrupted = pairs(u8, name, (1, 2, 3, 4, 5))
    if SHIFTS.meta(name).deterministic:
        check_per_pixel(name, corrupted)
        stats = {}
    else:
        stats = check_distribution(u8, name, corrupted)
    gaps = check_accuracy(labels, model, name, corrupted)
    print(f"ORACLE {name} n={n} accuracy gaps (pp): {gaps} (mean ours, mean ref, std ours, std ref): {stats}")


def test_spatter_given_the_liquid_layer(fmnist_test):
    """spatter's deterministic part (all but the random liquid layer) against imagecorruptions: the same
    numpy-drawn layer through both. Water mode differs only by the exact vs OpenCV's 5×5-mask distance."""
    from imagecorruptions_oracle import load
    from PIL import Image

    from shiftlab.shifts.tables import params as table_params
    from shiftlab.shifts.weather import SpatterParams

    ic = load()
    u8, _ = images224(fmnist_test, 3)
    for severity in (1, 2, 3, 4, 5):
        loc, scale, sigma, threshold, intensity, mud = table_params("spatter", "imagenet", severity)
        for i, img in enumerate(u8):
            state = np.random.get_state()
            try:
                np.random.seed(100 + i)
                liquid = np.random.normal(size=(224, 224), loc=loc, scale=scale)
                np.random.seed(100 + i)
                ref = np.uint8(ic.spatter(Image.fromarray(img.permute(1, 2, 0).numpy()), severity))
            finally:
                np.random.set_state(state)
            params = SpatterParams(float(sigma), float(threshold), float(intensity), bool(mud),
                                   torch.from_numpy(liquid).float()[None])
            out = SHIFTS.get("spatter").apply(img[None].float() / 255, params)[0]
            diff = (torch.floor(out * 255 + 1e-4) - torch.from_numpy(ref).permute(2, 0, 1).float()).abs()
            # measured: water 0.02-0.24 grey levels on average (a few pixels up to ~30, where the distance
            # approximation moves a histogram-equalisation bin); mud ≤ 1 level everywhere
            limit = 0.05 if mud else 0.5
            assert diff.mean() <= limit, f"spatter s{severity}: mean |Δ| {diff.mean():.3f} grey levels"
