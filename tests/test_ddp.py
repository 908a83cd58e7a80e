"""Distributed training (torchrun, DistributedDataParallel on gloo CPU processes), mixed precision and
channels-last.

Tolerance of 2 ranks against 1 process: mlp-mixer-tiny (LayerNorm, no batch statistics) trained with
ERM for 128 steps (2 epochs of 1024 Fashion-MNIST images, global batch 16) ends, on 2 gloo ranks, with
weights within 5.3e-6 (absolute) / 7.2e-6 (relative, per tensor) of the one-process run and the same
validation accuracy (measured); the differences are the order of float additions in the gradient
all-reduce. The test allows 1e-4 on both. (small-cnn has batch norm, whose per-rank batch statistics change the
trajectory: such runs agree statistically, not numerically, and are not compared here.)
"""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import queue
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from shiftlab.core.errors import UserError
from shiftlab.core.seeding import isolated_global_rng
from shiftlab.data import iterate_batches, load_dataset
from shiftlab.models import build_model, config_for, load_model
from shiftlab.training import TrainConfig, train
from shiftlab.training.distributed import SINGLE, Distributed, local_batch_size, rank_batches
from shiftlab.training.maximizers import InnerMax, maximize, maximize_smoothed

REPO = Path(__file__).resolve().parents[1]
MIXER = (("depth", "2"), ("dim", "32"), ("token_hidden", "32"), ("channel_hidden", "64"))
COMMON: dict[str, Any] = dict(model="mlp-mixer-tiny", model_options=MIXER, epochs=2, train_limit=1024, batch_size=16,
                              seed=5, device="cpu")
TOLERANCE = 1e-4
SMALL_CNN = (("width", "8"), ("hidden", "32"))
SEVERAL_FORWARDS = ("fat", "advprop")  # PGD stopping early (a different number of forwards per rank); two
# forwards with gradients, one of them through the auxiliary batch norm


def _cli_args(config: dict[str, Any]) -> list[str]:
    args = ["--model", config["model"], "--epochs", str(config["epochs"]), "--train-limit", str(config["train_limit"]),
            "--batch-size", str(config["batch_size"]), "--seed", str(config["seed"]), "--device", config["device"]]
    for key, value in config["model_options"]:
        args += ["--model-option", f"{key}={value}"]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``torchrun --standalone --nproc-per-node 2 -m shiftlab train ...`` on the CPU (gloo)."""
    out = tmp_path_factory.mktemp("ddp") / "torchrun"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "shiftlab", "train", *_cli_args(COMMON), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=out.parent, timeout=600)
    return done, out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path)[0].state_dict()


def test_torchrun_matches_one_process_and_only_rank0_reports(torchrun_run, tmp_path, single_thread):
    done, out = torchrun_run
    assert done.returncode == 0, done.stderr[-2000:]
    # rank 0 alone shows progress and the result; rank 1 is quiet
    assert done.stdout.count("trained mlp-mixer-tiny") == 1 and done.stdout.count("epoch 2:") == 1, done.stdout
    assert "error" not in done.stderr.lower()
    one = train(TrainConfig(out=str(tmp_path / "one"), **COMMON))
    ddp, single = _weights(out), _weights(one.checkpoint)
    worst = max(float((ddp[k] - single[k]).abs().max()) for k in single)
    relative = max(float((ddp[k] - single[k]).norm() / single[k].norm().clamp_min(1e-12)) for k in single)
    assert 0 < worst < TOLERANCE and relative < TOLERANCE  # equal up to float reduction order, not bit-identical
    history = json.loads((out / "model.json").read_text())["training"]["history"]
    assert [h["processes"] for h in history] == [2.0, 2.0]
    for a, b in zip(history, one.history, strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) < TOLERANCE and a["val_accuracy"] == b["val_accuracy"]


class StopBeforeEpoch:
    """A progress that interrupts the run (like Ctrl-C) when epoch ``epoch`` starts."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt

    def step(self, loss: float, accuracy: float) -> None:
        pass

    def epoch_end(self, row: dict[str, float]) -> None:
        pass


def _rank_worker(rank: int, port: int, tmp: str, results: Any) -> None:
    """One of two gloo ranks: an interrupted run and its resume, then the several-forward recipes."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as td

    import shiftlab.training.loop as loop
    from shiftlab.training.distributed import unwrap

    report: dict[str, Any] = {"writes": 0, "agree": []}
    real_save, real_state, real_epoch = loop.save_checkpoint, loop._save_state, loop._train_epoch

    def counted(real: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            report["writes"] += 1
            return real(*args, **kwargs)
        return write

    def epoch_then_compare(config: TrainConfig, model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        row = real_epoch(config, model, *args, **kwargs)
        total = torch.tensor([sum(float(t.double().sum()) for t in unwrap(model).state_dict().values())],
                             dtype=torch.float64)
        both = [torch.zeros(1, dtype=torch.float64) for _ in range(2)]
        td.all_gather(both, total)
        report["agree"].append((config.recipe, bool(torch.equal(both[0], both[1]))))
        return row

    loop.save_checkpoint, loop._save_state, loop._train_epoch = (counted(real_save), counted(real_state),
                                                                 epoch_then_compare)
    td.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=300))
    dist = Distributed(rank, 2, rank, 2)
    try:
        config = TrainConfig(out=str(Path(tmp) / "resumed"), **COMMON)
        try:
            train(config, StopBeforeEpoch(1), distributed=dist)
            report["interrupted"] = False
        except KeyboardInterrupt:
            report["interrupted"] = True
        report["epochs_saved"] = int(torch.load(Path(tmp) / "resumed" / "train_state.pt", weights_only=True)["epoch"])
        report["resumed_from"] = train(config, resume=True, distributed=dist).resumed_from
        for recipe in SEVERAL_FORWARDS:
            train(TrainConfig(out=str(Path(tmp) / recipe), recipe=recipe, model="small-cnn", model_options=SMALL_CNN,
                              epochs=1, train_limit=32, batch_size=16, val_fraction=0.01, device="cpu"),
                  distributed=dist)
        results.put((rank, report))
    except BaseException as exc:
        results.put((rank, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        td.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_ranks(tmp: Path) -> dict[int, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    procs = [context.Process(target=_rank_worker, args=(rank, port, str(tmp), results)) for rank in range(2)]
    for p in procs:
        p.start()
    reports: dict[int, Any] = {}
    try:
        for _ in procs:
            rank, report = results.get(timeout=600)
            reports[rank] = report
    except queue.Empty:
        pytest.fail(f"the ranks hung (reports so far: {reports})")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return reports


def test_ddp_resume_is_exact_rank0_writes_and_several_forward_recipes_run(torchrun_run, tmp_path):
    done, uninterrupted = torchrun_run
    assert done.returncode == 0, done.stderr[-2000:]
    reports = _spawn_ranks(tmp_path)
    assert all(isinstance(r, dict) for r in reports.values()), reports
    for rank, r in reports.items():
        assert r["interrupted"] and r["epochs_saved"] == 1 and r["resumed_from"] == 1
        # every rank holds the same weights and buffers after every epoch, whatever the recipe
        assert all(same for _, same in r["agree"]) and {n for n, _ in r["agree"]} == {"erm", *SEVERAL_FORWARDS}
        # rank 0 writes the checkpoint and the state once per epoch and once at the end; rank 1 never
        assert r["writes"] == (2 * 2 + 1 + len(SEVERAL_FORWARDS) * 3 if rank == 0 else 0)
    a, b = _weights(uninterrupted), _weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)  # interrupted + resumed == uninterrupted, bit for bit
    for recipe in SEVERAL_FORWARDS:
        assert all(torch.isfinite(t).all() for t in _weights(tmp_path / recipe).values())


def test_batch_not_divisible_by_processes_is_one_line_from_rank0(tmp_path):
    """What each of torchrun's two processes does with --batch-size 15: rank 0 reports, rank 1 is quiet."""
    runs = []
    for rank in (0, 1):
        env = dict(_env(), RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
        runs.append(subprocess.Popen([sys.executable, "-m", "shiftlab", "train", "--batch-size", "15", "--device",
                                      "cpu", "--out", str(tmp_path / "x")], env=env, cwd=tmp_path,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    (out0, err0), (out1, err1) = (p.communicate(timeout=300) for p in runs)
    assert [p.returncode for p in runs] == [2, 2]
    assert err0.strip().splitlines() == [
        "error: --batch-size 15 is not divisible by the 2 training processes; use a multiple of 2 "
        "(the global batch is split evenly across them)"]
    assert out0 == out1 == err1 == "" and not (tmp_path / "x").exists()


def test_rank_slices_make_up_the_one_process_batches():
    data = load_dataset("fashion-mnist", "train", limit=100)
    one = list(iterate_batches(data, 12, shuffle=True, generator=torch.Generator().manual_seed(3), drop_last=True))
    for world in (1, 2, 4):
        shards = [list(rank_batches(data, 12, torch.Generator().manual_seed(3), "cpu", Distributed(r, world, r, world)))
                  for r in range(world)]
        assert all(len(s) == len(one) == 8 for s in shards)
        for step, (x, y) in enumerate(one):
            assert torch.equal(torch.cat([s[step][0] for s in shards]), x)
            assert torch.equal(torch.cat([s[step][1] for s in shards]), y)
    with pytest.raises(UserError, match="not divisible by the 5"):
        local_batch_size(12, 5)


def test_torchrun_environment_is_read_and_keys_steps_by_rank():
    assert Distributed.from_environment({}) == SINGLE and SINGLE.key == () and not SINGLE.active
    d = Distributed.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (d.rank, d.world_size, d.local_rank, d.local_world_size, d.key, d.is_main) == (3, 4, 1, 2, ("rank", 3), False)
    with pytest.raises(UserError, match="integers"):
        Distributed.from_environment({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(UserError, match="not a valid rank"):
        Distributed.from_environment({"RANK": "2", "WORLD_SIZE": "2"})


def _small_cnn() -> torch.nn.Module:
    data = load_dataset("fashion-mnist", "test", limit=16)
    with isolated_global_rng(0):
        return build_model(config_for("small-cnn", data.info, width="8", hidden="32")).eval()


def test_inner_attacks_stay_float32_under_autocast():
    """The maximisers switch autocast off: under bf16 autocast they return exactly the float32 result
    (with a bf16 input gradient, PGD's signed steps differ on many pixels)."""
    data = load_dataset("fashion-mnist", "test", limit=32)
    x, y = data.get_batch(torch.arange(32))
    model = _small_cnn()
    noise = 0.25 * torch.randn((32, 2, *x.shape[1:]), generator=torch.Generator().manual_seed(1))
    for cfg in (InnerMax(), InnerMax(loss="kl", start="gaussian"), InnerMax(bn="batch", steps=2)):
        ref = maximize(model, x, y, cfg, torch.Generator().manual_seed(0)).x_adv
        with torch.autocast("cpu", dtype=torch.bfloat16):
            under = maximize(model, x, y, cfg, torch.Generator().manual_seed(0)).x_adv
        assert torch.equal(ref, under)
    ref = maximize_smoothed(model, x, y, noise, 0.5, 0.25, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(ref, maximize_smoothed(model, x, y, noise, 0.5, 0.25, 2))


def test_bf16_channels_last_training_on_cpu_and_amp_is_part_of_resume_identity(tmp_path):
    common = dict(model_options=SMALL_CNN, epochs=1, train_limit=256, batch_size=32, val_fraction=0.01, seed=1)
    fp32 = train(TrainConfig(out=str(tmp_path / "fp32"), **common))
    bf16 = train(TrainConfig(out=str(tmp_path / "bf16"), amp="bf16", channels_last=True, **common))
    assert bf16.card.training["config"]["amp"] == "bf16" and bf16.card.training["config"]["channels_last"]
    # the same run in bfloat16: other numbers, the same learning
    assert bf16.history[0]["train_loss"] != fp32.history[0]["train_loss"]
    assert abs(bf16.history[0]["train_loss"] - fp32.history[0]["train_loss"]) < 0.1
    assert abs(bf16.card.training["test_accuracy"] - fp32.card.training["test_accuracy"]) < 0.05
    with pytest.raises(UserError, match="amp 'bf16'"):
        train(TrainConfig(out=str(tmp_path / "bf16"), **common), resume=True)
    # the layout is not part of the identity, and runs stored before --amp existed still resume
    assert "channels_last" not in TrainConfig(out="x", channels_last=True).identity()
    assert "amp" not in TrainConfig(out="x").identity() and TrainConfig(out="x", amp="bf16").identity()["amp"] == "bf16"


@pytest.mark.parametrize("kwargs, message", [({"amp": "fp16"}, "needs a CUDA device"), ({"amp": "fp32"}, "bf16 or fp16"),
                                             ({"amp": "bf16", "device": "mps"}, "cpu or cuda")])
def test_bad_amp_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(out="unused", **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fp16_channels_last_training_on_cuda_learns_and_resumes_with_its_loss_scale(tmp_path):
    """CUDA kernels are not bit-deterministic (atomics in backward passes), so the resumed run is compared
    to the uninterrupted one by accuracy, not bit for bit as on the CPU."""
    common = dict(model_options=SMALL_CNN, epochs=2, train_limit=512, batch_size=64, val_fraction=0.01, seed=1,
                  device="cuda", amp="fp16", channels_last=True)
    full = train(TrainConfig(out=str(tmp_path / "full"), **common))
    scale = torch.load(tmp_path / "full" / "train_state.pt", weights_only=True)["scaler"]["scale"]
    assert 0 < scale < float("inf") and full.card.training["test_accuracy"] > 0.5
    import shiftlab.training.loop as loop

    real = loop._train_epoch

    def crash_in_second_epoch(*args: Any, **kwargs: Any) -> Any:
        if args[5] == 1:  # _train_epoch(config, model, recipe, optimizer, data, epoch, ...)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    loop._train_epoch = crash_in_second_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            train(TrainConfig(out=str(tmp_path / "part"), **common))
    finally:
        loop._train_epoch = real
    assert torch.load(tmp_path / "part" / "train_state.pt", weights_only=True)["scaler"]["scale"] > 0
    resumed = train(TrainConfig(out=str(tmp_path / "part"), **common), resume=True)
    assert resumed.resumed_from == 1
    assert abs(resumed.card.training["test_accuracy"] - full.card.training["test_accuracy"]) < 0.05


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_torchrun_nccl_on_two_gpus_matches_one_gpu(tmp_path):
    config = dict(COMMON, device="cuda")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "shiftlab",
           "train", *_cli_args(config), "--amp", "bf16", "--channels-last", "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    one = train(TrainConfig(out=str(tmp_path / "one"), amp="bf16", channels_last=True, **config))
    ddp = json.loads((tmp_path / "ddp" / "model.json").read_text())["training"]
    assert abs(ddp["test_accuracy"] - one.card.training["test_accuracy"]) < 0.03
