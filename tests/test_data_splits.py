"""Issue 14, item 5: an image folder without test/ had a test split that included training images."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from shiftlab.data import load_dataset


def make_folder(root, classes=3, per_class=20, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")


def files(ds):
    base = ds
    index = torch.arange(len(ds))
    while hasattr(base, "base"):
        index = base.indices[index]
        base = base.base
    return {base.files[i] for i in index.tolist()}


def test_splits_of_a_folder_without_test_never_overlap_and_are_stable(tmp_path):
    make_folder(tmp_path)
    splits = {s: load_dataset("image-folder", s, root=tmp_path, image_size=8) for s in ("train", "val", "test")}
    sets = {s: files(d) for s, d in splits.items()}
    assert not sets["train"] & sets["test"] and not sets["val"] & sets["test"] and not sets["train"] & sets["val"]
    assert len(sets["test"]) == 12 and sum(len(v) for v in sets.values()) == 60
    again = load_dataset("image-folder", "test", root=tmp_path, image_size=8, seed=5)  # the train/val seed
    assert files(again) == sets["test"]  # the test hold-out does not move with it
    assert "hold-out" in splits["test"].describe() and "image folder" in splits["test"].describe()


def test_an_explicit_test_folder_is_used_as_is(tmp_path):
    make_folder(tmp_path / "train")
    make_folder(tmp_path / "test", per_class=5, seed=1)
    test = load_dataset("image-folder", "test", root=tmp_path, image_size=8)
    train = load_dataset("image-folder", "train", root=tmp_path, image_size=8)
    assert len(test) == 15 and not files(train) & files(test)
