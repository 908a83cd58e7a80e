import gzip
import pickle

import numpy as np
import pytest
import torch

from shiftlab.core.errors import DatasetNotFoundError, UserError
from shiftlab.data import DATASETS, iterate_batches, load_dataset


def test_fashion_mnist_splits_are_real_disjoint_and_deterministic():
    train = load_dataset("fashion-mnist", "train", seed=3)
    val = load_dataset("fashion-mnist", "val", seed=3)
    test = load_dataset("fashion-mnist", "test")
    assert (len(train), len(val), len(test)) == (54000, 6000, 10000)
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())
    assert torch.equal(val.indices, load_dataset("fashion-mnist", "val", seed=3).indices)
    assert not torch.equal(val.indices, load_dataset("fashion-mnist", "val", seed=4).indices)
    x, y = test.get_batch(torch.arange(64))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.9
    assert y.dtype == torch.int64 and set(test.labels.tolist()) == set(range(10))
    assert torch.bincount(test.labels).tolist() == [1000] * 10  # the published test set is balanced
    assert test.info.class_names[9] == "Ankle boot"


def test_limit_and_batches():
    test = load_dataset("fashion-mnist", "test", limit=100)
    sizes = [len(y) for _, y in iterate_batches(test, 32)]
    assert sizes == [32, 32, 32, 4]
    with pytest.raises(UserError):
        load_dataset("fashion-mnist", "test", limit=0)
    with pytest.raises(UserError):
        load_dataset("fashion-mnist", "dev")


def test_shuffled_batches_depend_only_on_the_generator():
    test = load_dataset("fashion-mnist", "test", limit=50)
    a = [y for _, y in iterate_batches(test, 10, shuffle=True, generator=torch.Generator().manual_seed(1))]
    b = [y for _, y in iterate_batches(test, 10, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_missing_and_malformed_fashion_mnist(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", "test", root=tmp_path / "nowhere")
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"garbage!"))
    with pytest.raises(DatasetNotFoundError, match="malformed"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


def _write_cifar10(root, n_train=20, n_test=10):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        data = rng.integers(0, 256, (n_train, 3072), dtype=np.uint8)
        (base / f"data_batch_{i}").write_bytes(pickle.dumps({b"data": data, b"labels": list(rng.integers(0, 10, n_train))}))
    test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    (base / "test_batch").write_bytes(pickle.dumps({b"data": test, b"labels": [int(v) for v in rng.integers(0, 10, n_test)]}))
    names = [f"class{i}".encode() for i in range(10)]
    (base / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return test


def test_cifar10_reads_python_batches(tmp_path):
    raw = _write_cifar10(tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert len(test) == 10 and test.info.channels == 3 and test.info.class_names[0] == "class0"
    x, _ = test.get_batch(torch.arange(2))
    assert x.shape == (2, 3, 32, 32)
    assert torch.allclose(x[0], torch.from_numpy(raw[0].reshape(3, 32, 32)).float() / 255)
    assert len(load_dataset("cifar10", "train", root=tmp_path)) == 90


def test_cifar_refuses_pickles_that_run_code(tmp_path):
    _write_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DatasetNotFoundError, match="refusing to load global builtins.print"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_missing_is_one_line_user_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar100", "test", root=tmp_path)
    assert "--download" in str(info.value) and "\n" not in str(info.value)


def test_image_folder_resizes_and_crops(tmp_path):
    from PIL import Image

    for c, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / c).mkdir()
        for i in range(3):
            Image.new("RGB", (50 + 10 * i, 40), colour).save(tmp_path / c / f"{i}.png")
    ds = load_dataset("image-folder", "train", root=tmp_path, image_size=32, val_fraction=0.01)
    whole = ds.base.base  # the folder itself, under the fixed test hold-out and the train/val split
    assert len(whole) == 6 and ds.info.class_names == ("cat", "dog")
    x, y = whole.get_batch(torch.arange(6))
    assert x.shape == (6, 3, 32, 32)
    assert torch.allclose(x[0, 0], torch.ones(32, 32)) and torch.allclose(x[5, 2], torch.ones(32, 32))
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(UserError, match="--data-root"):
        load_dataset("image-folder", "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no class sub-folders"):
        load_dataset("image-folder", "test", root=tmp_path / "empty")


def test_digits_is_28px_grayscale():
    ds = load_dataset("digits", "test")
    x, y = ds.get_batch(torch.arange(len(ds)))
    assert x.shape[1:] == (1, 28, 28) and 300 < len(ds) < 400
    assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_registry_lists_the_issue_datasets():
    assert {"fashion-mnist", "cifar10", "cifar100", "image-folder", "digits"} <= set(DATASETS.names())
