"""Every registered recipe trains on real Fashion-MNIST; EMA/selection resume exactly; the CLI path."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from shiftlab.core.seeding import isolated_global_rng, make_generator
from shiftlab.data import load_dataset
from shiftlab.models import build_model, config_for, load_model
from shiftlab.training import RECIPES, StepContext, TrainConfig, build_recipe, train
from shiftlab.training.loop import STATE_NAME, make_optimizer
from shiftlab.training.selection import BestCheckpoint, ValidationScorer


@pytest.fixture(scope="module")
def fmnist_train_small():
    return load_dataset("fashion-mnist", "train", limit=192)


@pytest.mark.parametrize("name", RECIPES.names())
def test_recipe_trains_on_fashion_mnist(name, fmnist_train_small):
    """Two SGD steps of batch 64 through the recipe: finite loss, weights move, logits returned.
    Adversarial recipes run 2 attack steps here to keep the test fast."""
    data = fmnist_train_small
    fields = build_recipe(name).to_dict()
    recipe = build_recipe(name, {"steps": str(min(2, fields["steps"]))} if "steps" in fields else {})
    with isolated_global_rng(0):
        model = build_model(config_for("small-cnn", data.info))
    recipe.setup(model)
    config = TrainConfig(out="unused", batch_size=64, lr=0.05)
    optimizer = make_optimizer(config, model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    for step in range(2):
        x, y = data.get_batch(torch.arange(step * 64, step * 64 + 64))
        ctx = StepContext(make_generator(0, "step", 0, step), 0, step, 2, 1, 0.0, 10)
        out = recipe.step(model, x, y, ctx)
        assert torch.isfinite(out.loss) and out.loss.ndim == 0
        assert out.logits.shape[0] >= 64 and out.logits.shape[1] == 10
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    after = model.state_dict()
    assert model.training
    assert set(after) == set(before)  # the standard architecture: nothing added (AdvProp's aux BN included)
    moved = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert any("weight" in k for k in moved)


@pytest.mark.parametrize("args", [{"alpha": "-1"}, {"nope": "1"}, {"alpha": "abc"}])
def test_bad_recipe_args_are_user_errors(args):
    from shiftlab.core.errors import UserError

    with pytest.raises(UserError):
        build_recipe("mixup", args)


def _interrupt_after_first_epoch():
    class Stop(Exception):
        pass

    class Progress:
        def epoch_start(self, epoch, epochs, steps):
            if epoch == 1:
                raise Stop

        def step(self, loss, accuracy):
            pass

        def epoch_end(self, row):
            pass

    return Stop, Progress()


def test_ema_and_selection_resume_exactly(tmp_path):
    """2 epochs straight vs 1 epoch + --resume: same EMA, same selected checkpoint; the kept epoch is the best."""
    common = dict(epochs=2, batch_size=64, train_limit=128, val_fraction=0.02, ema=0.9, select="clean",
                  select_limit=300, recipe="mixup", recipe_args=(("alpha", "0.4"),))
    full = train(TrainConfig(out=str(tmp_path / "full"), **common))
    stop, progress = _interrupt_after_first_epoch()
    with pytest.raises(stop):
        train(TrainConfig(out=str(tmp_path / "part"), **common), progress=progress)
    resumed = train(TrainConfig(out=str(tmp_path / "part"), **common), resume=True)
    assert resumed.resumed_from == 1

    a, _ = load_model(full.checkpoint)
    b, _ = load_model(resumed.checkpoint)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    sa = torch.load(tmp_path / "full" / STATE_NAME, weights_only=True)
    sb = torch.load(tmp_path / "part" / STATE_NAME, weights_only=True)
    for k, v in sa["ema"]["state"].items():
        assert torch.equal(v, sb["ema"]["state"][k]), k
    assert sa["ema"]["updates"] == 4

    scores = [row["select_score"] for row in full.history]
    chosen = full.card.training["selection"]
    assert chosen["epoch"] == 1 + max(range(len(scores)), key=lambda i: (scores[i], -i))
    val = load_dataset("fashion-mnist", "val", val_fraction=0.02)
    rescored = ValidationScorer("clean", val, "cpu", 0, limit=300).score(a)
    assert rescored == pytest.approx(chosen["score"])


def test_best_checkpoint_keeps_best_epoch():
    best = BestCheckpoint()
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.7], start=1):
        best.offer(score, epoch, {"w": torch.tensor([float(epoch)])})
    assert best.epoch == 2 and best.score == 0.7 and float(best.state["w"]) == 2.0


def test_adversarial_selection_scores_below_clean(fmnist_model, fmnist_test):
    model, _ = fmnist_model
    clean = ValidationScorer("clean", fmnist_test, "cpu", 0, limit=250).score(model)
    adv = ValidationScorer("adversarial", fmnist_test, "cpu", 0, limit=250, eps=0.1).score(model)
    noisy = ValidationScorer("corruption", fmnist_test, "cpu", 0, limit=250).score(model)
    assert clean > 0.8 and adv < clean - 0.3 and noisy <= clean


def test_cli_train_mixup(tmp_path):
    from shiftlab.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--recipe", "mixup", "--recipe-arg", "alpha=0.2", "--epochs", "1",
                                      "--train-limit", "256", "--batch-size", "64", "--out", str(out), "--ema", "0.9"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "model.json").read_text())
    assert "mixup" in json.dumps(card) and "0.2" in json.dumps(card)


@pytest.mark.parametrize("argv", [["--recipe-arg", "alpha=zero"], ["--recipe-arg", "gamma=1"], ["--ema", "1.5"],
                                  ["--select", "best"]])
def test_cli_bad_arguments_exit_2_one_line(tmp_path, argv):
    from shiftlab.cli import app

    result = CliRunner().invoke(app, ["train", "--recipe", "mixup", "--epochs", "1", "--train-limit", "256",
                                      "--out", str(tmp_path / "x"), *argv])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
