import pytest
import torch

from shiftlab.core.errors import UserError
from shiftlab.models import load_model
from shiftlab.training import TrainConfig, train
from shiftlab.training.loop import learning_rate_at


def _weights(path):
    model, card = load_model(path)
    return model.state_dict(), card


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    common = dict(epochs=2, train_limit=1024, batch_size=128, seed=7, val_fraction=0.02)
    full = train(TrainConfig(out=str(tmp_path / "full"), **common))
    # an "interrupted" run: same config, stopped after epoch 1 by a 1-epoch run's state
    part_cfg = TrainConfig(out=str(tmp_path / "part"), **common)
    import shiftlab.training.loop as loop

    real_epoch = loop._train_epoch
    calls = {"n": 0}

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    loop._train_epoch = crash_on_second
    try:
        with pytest.raises(KeyboardInterrupt):
            train(part_cfg)
    finally:
        loop._train_epoch = real_epoch
    with pytest.raises(UserError, match="--resume"):
        train(part_cfg)
    resumed = train(part_cfg, resume=True)
    assert resumed.resumed_from == 1
    a, card_a = _weights(full.checkpoint)
    b, card_b = _weights(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert card_a.fingerprint != "" and [h["val_accuracy"] for h in full.history] == [h["val_accuracy"] for h in resumed.history]


def test_resume_with_other_settings_is_refused(tmp_path):
    train(TrainConfig(out=str(tmp_path / "r"), epochs=1, train_limit=256, batch_size=128, val_fraction=0.02))
    with pytest.raises(UserError, match="other settings"):
        train(TrainConfig(out=str(tmp_path / "r"), epochs=1, train_limit=256, batch_size=128, lr=0.3), resume=True)


def test_training_learns_and_card_records_it(tmp_path):
    result = train(TrainConfig(out=str(tmp_path / "t"), epochs=1, train_limit=4096, batch_size=64, val_fraction=0.02))
    t = result.card.training
    assert t["test_accuracy"] > 0.6  # far above the 10 % of chance after 64 steps
    assert t["history"][0]["val_accuracy"] > 0.6 and t["train_seconds"] > 0
    assert result.card.recipe["name"] == "erm" and result.card.dataset == "fashion-mnist"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "--epochs"),
        ({"optimizer": "adam"}, "--optimizer"),
        ({"schedule": "step"}, "--schedule"),
        ({"lr": -1.0}, "--lr"),
        ({"label_smoothing": 1.0}, "--label-smoothing"),
    ],
)
def test_bad_config_values_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(out="unused", **kwargs)


def test_onecycle_schedule_warms_up_then_anneals():
    cfg = TrainConfig(out="unused", lr=0.1)
    lrs = [learning_rate_at(cfg, s, 100) for s in range(100)]
    peak = max(range(100), key=lambda i: lrs[i])
    assert 10 <= peak <= 20 and lrs[0] < 0.01 and lrs[-1] < 0.001 and abs(max(lrs) - 0.1) < 0.01


def test_resume_needs_a_run_and_names_the_settings_that_differ(tmp_path):
    """Issue 14, item 8: --resume on an empty folder used to start fresh silently, and a mismatch did not
    say which setting differs."""
    with pytest.raises(UserError, match="holds no training run"):
        train(TrainConfig(out=str(tmp_path / "empty"), epochs=1, train_limit=256, batch_size=128), resume=True)
    assert not (tmp_path / "empty").exists()
    cfg = TrainConfig(out=str(tmp_path / "r"), epochs=1, train_limit=256, batch_size=128, val_fraction=0.02)
    train(cfg)
    with pytest.raises(UserError, match=r"epochs 1 \(now 2\), lr None \(now 0.3\)"):
        train(TrainConfig(out=str(tmp_path / "r"), epochs=2, train_limit=256, batch_size=128, val_fraction=0.02,
                          lr=0.3), resume=True)
    again = train(cfg, resume="auto")  # auto: the finished run is the result
    assert again.resumed_from == 1


def test_weights_and_card_are_written_with_the_same_permissions(tmp_path):
    """Issue 14, item 8: weights were written 0600 while cards were 0644."""
    result = train(TrainConfig(out=str(tmp_path / "p"), epochs=1, train_limit=256, batch_size=128, val_fraction=0.02))
    weights = (result.checkpoint / "model.safetensors").stat().st_mode & 0o777
    card = (result.checkpoint / "model.json").stat().st_mode & 0o777
    assert weights == card
