"""Shared fixtures: real Fashion-MNIST and a small-cnn trained on it once per cache key.

The trained checkpoint is cached under ``$SHIFTLAB_TEST_CACHE`` (default ~/.cache/shiftlab-tests),
keyed by a hash of the model and training code, so reruns do not retrain; a fresh machine
trains it once (about a minute on 2 cores).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from shiftlab.core.allocator import keep_freed_memory
from shiftlab.data import load_dataset

FMNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    keep_freed_memory()  # as the CLI does: reuse freed memory instead of page-faulting fresh tensors


def _code_hash(*files: str) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update((REPO / f).read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("SHIFTLAB_TEST_CACHE", Path.home() / ".cache" / "shiftlab-tests"))


def trained_checkpoint(name: str, epochs: int = 1, recipe: str = "erm", train_limit: int | None = None,
                       recipe_args: tuple[tuple[str, str], ...] = ()) -> Path:
    """Train (or reuse from the cache) small-cnn on Fashion-MNIST; returns the checkpoint dir."""
    from shiftlab.training import TrainConfig, train

    key = _code_hash("shiftlab/models/small_cnn.py", "shiftlab/training/loop.py", "shiftlab/models/checkpoint.py")
    out = cache_dir() / f"{name}-{key}"
    if not (out / "model.json").exists() or not (out / "train_state.pt").exists():
        train(TrainConfig(out=str(out), epochs=epochs, recipe=recipe, train_limit=train_limit,
                          recipe_args=recipe_args, name=name), resume="auto")
    return out


@pytest.fixture(scope="session")
def fmnist_test():
    """The real Fashion-MNIST test split (10,000 images)."""
    return load_dataset("fashion-mnist", "test")


@pytest.fixture(scope="session")
def fmnist_checkpoint() -> Path:
    """small-cnn trained 1 epoch (ERM) on real Fashion-MNIST (~89 % test accuracy)."""
    return trained_checkpoint("small-cnn-erm-1ep", epochs=1)


@pytest.fixture(scope="session")
def fmnist_model(fmnist_checkpoint):
    """(model in eval mode, card) of ``fmnist_checkpoint``."""
    from shiftlab.models import load_model

    return load_model(fmnist_checkpoint)


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's tests with one torch thread (the per-image reference oracles are single-threaded)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)
