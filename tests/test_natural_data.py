"""Natural-shift data: the derived Fashion-MNIST sets (deterministic, the same classes, their own content
fingerprint) and the readers of CIFAR-10.1, CIFAR-10.2, ImageNetV2, ImageNet-Sketch, ImageNet-A and
ImageNet-R, each on a tiny copy of its published layout, with the class alignment and the subset mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from shiftlab.core.errors import DatasetNotFoundError, UserError
from shiftlab.data import DatasetInfo, TensorImageDataset, load_dataset
from shiftlab.data.fingerprint import content_fingerprint
from shiftlab.data.natural import CIFAR10_CLASSES, align_classes
from shiftlab.evaluation import EvalContext, RunOptions
from shiftlab.evaluation.context import identify
from shiftlab.evaluation.suites.natural import load_shifted, natural_result
from shiftlab.models import ModelCard, ModelConfig
from shiftlab.store import Store

# ---- the derived Fashion-MNIST sets ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmnist_first():
    return load_dataset("fashion-mnist", "test", limit=500)


@pytest.mark.parametrize("name", ["fashion-mnist-rescaled", "fashion-mnist-sketch"])
def test_derived_sets_are_deterministic_same_classes_and_fingerprinted(name, fmnist_first):
    shifted = load_dataset(name, "test", limit=500)
    again = load_dataset(name, "test", limit=500)
    x, y = shifted.get_batch(torch.arange(500))
    assert torch.equal(x, again.get_batch(torch.arange(500))[0])
    alone, _ = shifted.get_batch(torch.tensor([417]))
    assert torch.equal(alone[0], x[417])  # an image does not depend on its batch
    assert torch.equal(y, fmnist_first.labels) and shifted.info.class_names == fmnist_first.info.class_names
    assert x.shape == (500, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    source, _ = fmnist_first.get_batch(torch.arange(500))
    assert not torch.equal(x, source)
    fingerprints = {content_fingerprint(d) for d in (shifted, again, fmnist_first)}
    assert len(fingerprints) == 2  # its own content fingerprint, the same on every load
    assert len(load_dataset(name, "test")) == 10_000
    with pytest.raises(UserError, match="test set only"):
        load_dataset(name, "train")


def test_rescaled_images_are_the_garments_at_scale_0_6_to_0_8(fmnist_first):
    x, _ = load_dataset("fashion-mnist-rescaled", "test", limit=500).get_batch(torch.arange(500))
    source, _ = fmnist_first.get_batch(torch.arange(500))
    lit = x[:, 0] > 0
    rows, cols = lit.any(2), lit.any(1)
    height = rows.shape[1] - rows.int().argmax(1) - rows.flip(1).int().argmax(1)
    width = cols.shape[1] - cols.int().argmax(1) - cols.flip(1).int().argmax(1)
    assert int(height.max()) <= round(0.8 * 28) and int(width.max()) <= round(0.8 * 28)
    # the garment's light scales with its area: s² with s uniform in [0.6, 0.8] averages 0.493
    ratio = x.sum((1, 2, 3)) / source.sum((1, 2, 3))
    assert 0.45 < float(ratio.mean()) < 0.54 and float(ratio.min()) > 0.3 and float(ratio.max()) < 0.7


def test_sketch_keeps_edges_and_a_flat_image_stays_black(fmnist_first):
    from shiftlab.data.natural import render_sketch

    x, _ = load_dataset("fashion-mnist-sketch", "test", limit=500).get_batch(torch.arange(500))
    assert torch.equal(x.amax((1, 2, 3)), torch.ones(500))  # every garment's strongest edge is white
    flat = render_sketch(torch.full((1, 1, 28, 28), 200, dtype=torch.uint8), torch.arange(1))
    assert flat.max() == 0
    step = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    step[..., 14:] = 255  # a vertical edge between columns 13 and 14: only those columns light up
    lit = render_sketch(step, torch.arange(1))[0, 0]
    assert lit[:, 13:15].eq(255).all() and lit[:, :13].eq(0).all() and lit[:, 15:].eq(0).all()


# ---- readers of the published sets ----------------------------------------------------------------------


def test_cifar10_1_reads_its_npy_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "cifar10.1_v6_data.npy", images)
    np.save(tmp_path / "cifar10.1_v6_labels.npy", np.array([3, 1, 4, 1, 5]))
    ds = load_dataset("cifar10.1", "test", root=tmp_path)
    x, y = ds.get_batch(torch.arange(5))
    assert y.tolist() == [3, 1, 4, 1, 5] and ds.info.class_names == CIFAR10_CLASSES
    assert torch.equal(x[2], torch.from_numpy(images[2]).permute(2, 0, 1).float() / 255)
    with pytest.raises(DatasetNotFoundError, match="cifar10.1_v4_data.npy is missing"):
        load_dataset("cifar10.1", "test", root=tmp_path, extra={"version": "v4"})
    with pytest.raises(UserError, match="test set only"):
        load_dataset("cifar10.1", "train", root=tmp_path)
    np.save(tmp_path / "cifar10.1_v6_labels.npy", np.array([3, 1, 4, 1, 10]))
    with pytest.raises(DatasetNotFoundError, match="0..9"):
        load_dataset("cifar10.1", "test", root=tmp_path)


def test_cifar10_2_reads_its_npz_archive(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar102_test.npz", images=images, labels=np.array([9, 0, 2, 7]))
    ds = load_dataset("cifar10.2", "test", root=tmp_path)
    x, y = ds.get_batch(torch.arange(4))
    assert y.tolist() == [9, 0, 2, 7] and ds.info.name == "cifar10.2" and ds.info.class_names[9] == "truck"
    assert torch.equal(x[3], torch.from_numpy(images[3]).permute(2, 0, 1).float() / 255)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10.2", "test", root=tmp_path / "elsewhere")
    assert "--shifted-data cifar10.2:" in str(info.value) and "\n" not in str(info.value)


def write_folders(root, classes: dict[str, int], per_class: int = 2) -> None:
    """``root/<class>/<i>.png``: uniform 12×10 RGB images whose red level is the class's ``classes`` value."""
    from PIL import Image

    for name, level in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 10), (level, 10 * i, 0)).save(root / name / f"{i}.png")


def test_imagenet_v2_orders_and_labels_its_numeric_folders_numerically(tmp_path):
    top = tmp_path / "imagenetv2-matched-frequency-format-val"
    write_folders(top, {"0": 10, "1": 20, "2": 30, "10": 110})
    ds = load_dataset("imagenet-v2", "test", root=tmp_path, image_size=8)
    x, y = ds.get_batch(torch.arange(len(ds)))
    assert ds.info.class_names == ("0", "1", "2", "10")  # a plain image folder would sort "10" before "2"
    assert y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert (x[:, 0, 0, 0] * 255).round().tolist() == [10, 10, 20, 20, 30, 30, 110, 110]
    assert (x[:, 1, 0, 0] * 255).round().tolist() == [0, 10] * 4  # files in name order within a class
    wnids = tuple(f"n{i:08d}" for i in range(12))
    aligned = align_classes(ds.info, wnids, "imagenet-v2")  # folder names are ImageNet class indices
    assert aligned.targets == (0, 1, 2, 10) and aligned.class_subset == (0, 1, 2, 10)
    with pytest.raises(UserError, match="pass its directory"):
        load_dataset("imagenet-v2", "test")


def test_imagenet_sketch_covers_every_class_without_a_mask(tmp_path):
    wnids = ("n01440764", "n01443537", "n01484850")
    write_folders(tmp_path / "sketch", dict(zip(wnids, (50, 60, 70), strict=True)), per_class=1)
    ds = load_dataset("imagenet-sketch", "test", root=tmp_path, image_size=8)
    assert ds.info.class_names == wnids and ds.labels.tolist() == [0, 1, 2]
    aligned = align_classes(ds.info, wnids, "imagenet-sketch")
    assert aligned.targets == (0, 1, 2) and aligned.class_subset is None


WNIDS = ("n01443537", "n01484850", "n01491361", "n01494475", "n01496331")


class ReadsRed(nn.Module):
    """Class k scores −|red level − 40(k+1)|, except class 0, which always scores highest."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        red = x[:, 0].mean((1, 2)) * 255
        logits = -(red.view(-1, 1) - 40.0 * torch.arange(1, 6).view(1, -1)).abs()
        logits[:, 0] = 1000.0
        return logits


def folder_context(store: Store, model: nn.Module) -> EvalContext:
    """An evaluation of ``model`` on a tiny ImageNet-like test set whose classes are ``WNIDS`` (8 px RGB)."""
    info = DatasetInfo("tiny-imagenet-like", len(WNIDS), WNIDS, 3, (8, 8), (0.5,) * 3, (0.25,) * 3)
    data = TensorImageDataset(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), info)
    card = ModelCard(ModelConfig("crafted", len(WNIDS), 3, (8, 8), (0.5,) * 3, (0.25,) * 3), name="reads-red",
                     fingerprint="ee" * 32)
    return EvalContext(model=model, card=card, data=data, data_name="image-folder",
                       dataset=identify(data, "image-folder", "test", None, store),
                       run=RunOptions(device="cpu"), store=store, device=torch.device("cpu"), run_id="t")


@pytest.mark.parametrize(("name", "folder"), [("imagenet-a", "imagenet-a"), ("imagenet-r", "imagenet-r")])
def test_imagenet_a_and_r_are_scored_over_their_class_subset(tmp_path, name, folder):
    # two of the model's five classes, each image's red level saying its class (40 (k + 1) for class k)
    write_folders(tmp_path / folder, {WNIDS[3]: 160, WNIDS[1]: 80}, per_class=3)
    (tmp_path / folder / "README.txt").write_text("not a class")
    ds = load_dataset(name, "test", root=tmp_path, image_size=8)
    assert ds.info.class_names == (WNIDS[1], WNIDS[3]) and ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    aligned = align_classes(ds.info, WNIDS, name)
    assert aligned.targets == (1, 3) and aligned.class_subset == (1, 3)
    logits = torch.tensor([[9.0, 1.0, 0.0, 2.0, 5.0], [9.0, 3.0, 0.0, 2.0, 5.0]])
    kept, labels = aligned.restrict(logits, torch.tensor([1, 0]))
    assert kept.tolist() == [[1.0, 2.0], [3.0, 2.0]] and labels.tolist() == [1, 0]
    assert kept.argmax(1).tolist() == labels.tolist()  # right over the subset, though class 0 wins overall
    with Store(tmp_path / "s.db") as store:
        ctx = folder_context(store, ReadsRed())
        shifted = load_shifted(ctx, f"{name}:{tmp_path}")
        result = natural_result(ctx, shifted)
    assert shifted.alignment.class_subset == (1, 3) and shifted.cell.shifted == name
    assert result.metrics["accuracy"] == 1.0 and result.metrics["classes"] == 2 and result.metrics["n"] == 6
    with torch.inference_mode():  # without the mask every image would be called class 0
        x, _ = ds.get_batch(torch.arange(6))
        assert ReadsRed()(x).argmax(1).eq(0).all()


def test_classes_that_do_not_match_the_model_are_a_user_error(tmp_path):
    info = DatasetInfo("other", 3, ("cat", "dog", "bird"), 3, (8, 8), (0.5,) * 3, (0.25,) * 3)
    with pytest.raises(UserError, match="not among the model's 5 classes"):
        align_classes(info, WNIDS, "other")
    numeric = DatasetInfo("v2", 2, ("3", "7"), 3, (8, 8), (0.5,) * 3, (0.25,) * 3)
    with pytest.raises(UserError):
        align_classes(numeric, WNIDS, "v2")  # index 7 is past the model's 5 classes
