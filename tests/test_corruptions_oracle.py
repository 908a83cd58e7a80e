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
# frost's accuracy is compared paired over the photograph (test_frost_per_scale_full): here each side draws
# its own photographs, and at 500 images which ones they happen to draw (the brightest two of five darken
# accuracy most) moves the gap by a few points on its own; the full oracle reports frost's gaps unasserted.
PAIRED_ACCURACY = {"frost"}


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


def check_accuracy(labels, model, name, corrupted, limit: float | None = 3.0):
    def accuracy(images: torch.Tensor) -> float:
        small = F.interpolate(images.float() / 255, size=28, mode="area")[:, :1]
        with torch.inference_mode():
            return (model(small).argmax(1) == labels).double().mean().item()

    gaps = {s: round(100 * (accuracy(o) - accuracy(r)), 2) for s, (o, r) in corrupted.items()}
    if limit is not None:
        assert all(abs(g) <= limit for g in gaps.values()), f"{name}: accuracy gaps (pp) by severity {gaps}"
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
    gaps = check_accuracy(labels, model, name, corrupted, None if name in PAIRED_ACCURACY else 3.0)
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


FROST_SIZE = {"cifar": 32, "tiny": 64, "imagenet": 224}  # each table at its dataset's image size


def frost_comparison(dataset, table: str, n: int, model=None, seed: int = 0, chunk: int = 40) -> dict[int, dict]:
    """Frost, ours against the reference procedure, on the first n Fashion-MNIST test images (bilinearly
    resized to the table's size, 3 channels), both truncated to uint8. Paired over the photograph the
    reference draws (randint(5)): every image is corrupted with each of the five, on both sides (ours
    through the matching FROST_PALETTE row), which removes the largest source of sampling noise (at 500
    images, which photographs the two sides happen to draw moves the accuracy gap by a few points).
    Returns per severity the mean |x' − x| in grey levels ("ours", "ref") and, with a model, its accuracy on
    both (area-downsampled to 28 px, first channel, as ``check_accuracy``; "acc_ours", "acc_ref")."""
    from imagecorruptions_oracle import frost_photographs, frost_reference

    from shiftlab.data.corrupted_files import grey_levels
    from shiftlab.shifts.tables import params as table_params
    from shiftlab.shifts.weather import FrostParams, frost_texture

    size = FROST_SIZE[table]
    photos = frost_photographs(table, size, size)
    rng = np.random.RandomState(seed)
    sums: dict[int, dict[str, float]] = {s: {"ours": 0.0, "ref": 0.0, "acc_ours": 0.0, "acc_ref": 0.0}
                                         for s in (1, 2, 3, 4, 5)}

    def correct(levels: torch.Tensor, labels: torch.Tensor) -> float:
        small = F.interpolate(levels.permute(0, 3, 1, 2).float() / 255, size=28, mode="area")[:, :1]
        with torch.inference_mode():
            return float((model(small).argmax(1) == labels).sum())

    for i, first in enumerate(range(0, n, chunk)):
        x, y = dataset.get_batch(torch.arange(first, min(first + chunk, n)))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
        u8 = torch.round(x * 255).to(torch.uint8).repeat_interleave(5, 0)  # image i with photographs 0..4
        labels = y.repeat_interleave(5)
        picks = torch.arange(5).repeat(len(x))
        texture = frost_texture(len(u8), size, size, torch.Generator().manual_seed(seed + i), table, pick=picks)
        clean = u8.permute(0, 2, 3, 1).contiguous()
        xf = u8.float() / 255
        for severity, acc in sums.items():
            wi, wf = table_params("frost", table, severity)
            ours = grey_levels(SHIFTS.get("frost").apply(xf, FrostParams(wi, wf, texture)))
            ref = torch.from_numpy(frost_reference(clean.numpy(), table, severity, photos, picks.numpy(), rng))
            for key, levels in (("ours", ours), ("ref", ref)):
                acc[key] += (levels.to(torch.int16) - clean.to(torch.int16)).abs().double().sum().item()
                if model is not None:
                    acc["acc_" + key] += correct(levels, labels)
    values = n * 5 * size * size * 3
    return {s: {"ours": acc["ours"] / values, "ref": acc["ref"] / values,
                "acc_ours": acc["acc_ours"] / (5 * n), "acc_ref": acc["acc_ref"] / (5 * n)}
            for s, acc in sums.items()}


def check_frost_scale(dataset, table: str, n: int, model=None) -> dict[int, dict]:
    """Ours within 2 % of the reference's mean |x' − x| at every severity and, with a model, within 3
    percentage points of its accuracy; returns the comparison with the ratio ours / reference added."""
    result = frost_comparison(dataset, table, n, model)
    for row in result.values():
        row["ratio"] = round(row["ours"] / row["ref"], 4)
        row["gap_pp"] = round(100 * (row["acc_ours"] - row["acc_ref"]), 2)
    ratios = {s: row["ratio"] for s, row in result.items()}
    assert all(abs(v - 1) <= 0.02 for v in ratios.values()), f"frost ({table}) ours / reference by severity: {ratios}"
    if model is not None:
        gaps = {s: row["gap_pp"] for s, row in result.items()}
        assert all(abs(g) <= 3.0 for g in gaps.values()), f"frost ({table}) accuracy gaps (pp): {gaps}"
    return result


def test_frost_reference_is_imagecorruptions(fmnist_test):
    """The frost procedure the per-table check uses is imagecorruptions' own at ImageNet-C scale: same
    numpy draws, same output."""
    from imagecorruptions_oracle import frost_photographs, frost_reference

    u8, _ = images224(fmnist_test, 3)
    clean = u8.permute(0, 2, 3, 1).numpy()
    photos = frost_photographs("imagenet", 224, 224)
    for severity in (1, 5):
        ref = reference_corrupt(clean, "frost", severity, seed=7)
        ours = frost_reference(clean, "imagenet", severity, photos, None, np.random.RandomState(7))
        assert np.array_equal(ours, ref), f"severity {severity}"


@pytest.mark.parametrize("table,n", [("cifar", 400), ("tiny", 200)])
def test_frost_per_scale_ci(table, n, fmnist_test):
    check_frost_scale(fmnist_test, table, n)


def window_means(v: torch.Tensor, size: int) -> torch.Tensor:
    """Means of C×H×W ``v`` over the size×size windows at every top-left corner in [0, H − size) ×
    [0, W − size) (the range of the reference's randint), from an integral image."""
    s = F.pad(v.cumsum(1).cumsum(2), (1, 0, 1, 0))
    total = s[:, size:, size:] - s[:, :-size, size:] - s[:, size:, :-size] + s[:, :-size, :-size]
    return total[:, :-1, :-1] / size**2


@pytest.mark.parametrize("table", FROST_SIZE)
def test_frost_palette_is_the_crops_moments(table):
    """FROST_PALETTE holds, per table, the moments of the crops the reference can cut from each photograph
    at that table's scale (every top-left corner its randint can draw, equally likely): mean, within-crop
    standard deviation and crop-to-crop standard deviation of the mean, per channel (CI's check at 224 px,
    where the mean-change comparison above is slow; it runs there in the slow test)."""
    from imagecorruptions_oracle import frost_photographs

    from shiftlab.shifts.weather import FROST_PALETTE

    size = FROST_SIZE[table]
    for k, photo in enumerate(frost_photographs(table, size, size)):
        rgb = torch.from_numpy(photo[..., ::-1].copy()).double().permute(2, 0, 1) / 255
        mean, square = (window_means(v, size) for v in (rgb, rgb * rgb))
        moments = (mean.mean((1, 2)), (square - mean**2).mean((1, 2)).sqrt(), mean.std((1, 2), correction=0))
        for got, want in zip(moments, FROST_PALETTE[table][k], strict=True):
            torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), atol=6e-4, rtol=0,
                                       msg=lambda m, t=table, i=k: f"{t} photograph {i + 1}: {m}")


@pytest.mark.slow
@pytest.mark.parametrize("table,n", [("cifar", 2000), ("tiny", 1000), ("imagenet", 500)])
def test_frost_per_scale_full(table, n, fmnist_test, fmnist_model):
    model, _ = fmnist_model
    result = check_frost_scale(fmnist_test, table, n, model)
    print(f"FROST {table} n={n}x5 photographs: " + "; ".join(
        f"s{s} mean|x'-x| {r['ours']:.3f}/{r['ref']:.3f} levels (x{r['ratio']}), accuracy "
        f"{100 * r['acc_ours']:.1f}/{100 * r['acc_ref']:.1f} % ({r['gap_pp']:+.1f} pp)" for s, r in result.items()))


@pytest.mark.parametrize("name", ["defocus_blur", "gaussian_blur"])
def test_exported_files_quantise_like_the_reference(name, fmnist_test, tmp_path):
    """Files written by export_corrupted (what `shiftlab corrupt` calls) change the clean images as much as
    imagecorruptions' output stored with np.uint8 (severity 1, ImageNet-C scale): the mean |x' − x| agrees
    within 2 % (the reference itself loses a level where float64 noise lands just below one), while files
    rounded to the nearest level are off by several times more (measured: 1 % vs 7.5 %, 0.3 % vs 23 %)."""
    from shiftlab.data.base import DatasetInfo, TensorImageDataset
    from shiftlab.evaluation.export import export_corrupted

    u8, labels = images224(fmnist_test, 8)
    info = DatasetInfo("fmnist-224", 10, tuple(map(str, range(10))), 3, (224, 224), (0.5,) * 3, (0.25,) * 3)
    dataset = TensorImageDataset(u8.contiguous(), labels, info)

    def mean_change(levels: torch.Tensor) -> float:
        return (levels.int() - u8.int()).abs().double().mean().item()

    want = mean_change(reference(u8, name, 1, 0))
    got = {}
    for quantize in ("truncate", "round"):
        export_corrupted(dataset, tmp_path / quantize, [name], [1], seed=0, table="imagenet", quantize=quantize)
        got[quantize] = mean_change(torch.from_numpy(np.load(tmp_path / quantize / f"{name}.npy")).permute(0, 3, 1, 2))
    assert abs(got["truncate"] - want) <= 0.02 * want, (got, want)
    assert abs(got["round"] - want) > 3 * abs(got["truncate"] - want), (got, want)
