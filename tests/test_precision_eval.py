"""Evaluation under mixed precision (--amp) and in channels-last layout (--channels-last).

bfloat16 autocast runs on the CPU, so the keying, the float32 attacks and the baseline lookups are tested
here; the fp16 path needs CUDA and is checked where one exists.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import shiftlab
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CorruptionCell
from shiftlab.evaluation import RunOptions
from shiftlab.models import load_model
from shiftlab.models.precision import Precise, float32_model, precision_fingerprint, with_precision
from shiftlab.store import Store

LIMIT = 200


def accuracy(report) -> float:
    return next(r.metrics["accuracy"] for r in report.rows if r.suite == "clean")


def test_bf16_rows_are_a_model_of_their_own_close_to_float32(tmp_path, fmnist_checkpoint):
    store = tmp_path / "s.db"
    full = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=LIMIT, device="cpu")
    half = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=LIMIT, device="cpu", amp="bf16")
    assert half.ran == ["clean"]  # not the float32 row
    again = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=LIMIT, device="cpu", amp="bf16")
    assert again.ran == [] and accuracy(again) == accuracy(half)
    assert abs(accuracy(half) - accuracy(full)) <= 0.02  # a few decisions flip in bfloat16, not more
    with Store(store) as db:
        models = {m.fingerprint: m.name for m in db.models()}
    plain = full.rows[0].id.fingerprint
    assert half.rows[0].id.fingerprint == precision_fingerprint(plain, "bf16") != plain
    assert models[half.rows[0].id.fingerprint].endswith("[bf16]") and not models[plain].endswith("]")


def test_channels_last_gives_the_same_rows(tmp_path, fmnist_checkpoint):
    store = tmp_path / "s.db"
    full = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=LIMIT, device="cpu")
    reused = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=LIMIT, device="cpu",
                               channels_last=True)
    assert reused.ran == [] and reused.rows[0].id == full.rows[0].id
    fresh = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=tmp_path / "other.db", limit=LIMIT, device="cpu",
                              channels_last=True)
    assert abs(accuracy(fresh) - accuracy(full)) <= 1 / LIMIT


def test_the_baseline_of_mce_is_looked_up_under_the_same_precision(tmp_path, fmnist_checkpoint):
    report = shiftlab.evaluate(fmnist_checkpoint, ["corruptions"], store=tmp_path / "s.db", limit=64, device="cpu",
                               amp="bf16", corruptions="gaussian_noise", severities="3",
                               baseline=str(fmnist_checkpoint))
    summary = next(r for r in report.rows if r.id.task.columns().is_summary)
    # the model is its own baseline, both evaluated in bf16 (CE is reported only when the baseline's rows are found)
    assert summary.metrics["ce/gaussian_noise"] == pytest.approx(1.0)
    assert summary.metrics["baseline_clean_error"] == summary.metrics["clean_error"]
    cells = [r for r in report.rows if isinstance(r.id.task, CorruptionCell)]
    assert cells and all(r.id.fingerprint == summary.id.fingerprint for r in cells)


def test_attacks_take_float32_gradients_under_amp(fmnist_checkpoint):
    model, _ = load_model(fmnist_checkpoint)
    wrapped = with_precision(model, "bf16", channels_last=True)
    assert isinstance(wrapped, Precise) and wrapped(torch.rand(2, 1, 28, 28)).dtype == torch.float32
    plain = float32_model(wrapped)
    x = torch.rand(4, 1, 28, 28, requires_grad=True)
    plain(x).logsumexp(1).sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    assert torch.allclose(plain(x), model(x), atol=1e-5)  # float32 numbers, channels-last layout kept
    assert float32_model(model) is model and with_precision(model, None, False) is model


def test_bad_precision_settings_are_one_line_errors(tmp_path, fmnist_checkpoint):
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        RunOptions(device="cpu", amp="fp16")
    with pytest.raises(UserError, match="--amp must be bf16 or fp16"):
        RunOptions(device="cpu", amp="fp8")
    out = subprocess.run([sys.executable, "-m", "shiftlab", "evaluate", "--model", str(fmnist_checkpoint),
                          "--store", str(tmp_path / "s.db"), "--device", "cpu", "--amp", "fp16"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "fp16 needs a CUDA device" in out.stderr and not (tmp_path / "s.db").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_cuda_amp_agrees_with_float32(tmp_path, fmnist_checkpoint, amp):
    store = tmp_path / "s.db"
    full = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=1000, device="cuda")
    half = shiftlab.evaluate(fmnist_checkpoint, ["clean"], store=store, limit=1000, device="cuda", amp=amp,
                             channels_last=True)
    assert abs(accuracy(half) - accuracy(full)) <= 0.01
