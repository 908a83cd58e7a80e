"""Robust overfitting and robust early stopping (Rice, Wong & Kolter 2020, arXiv:2002.11569), measured.

The zoo trains one epoch, too short for robust overfitting to appear. Here PGD-AT runs long on a small
training subset, where the effect shows quickly: every epoch the held-out robust accuracy (PGD-10 at
the training eps on ``--val`` validation images) is recorded, and ``--select adversarial`` keeps the
best epoch (the last epoch's weights stay in the run's training state). Then the kept and the last epoch are both evaluated on test images with APGD-CE.
Prints a per-epoch table, the verdict of the zoo's early-stopping check, and a final JSON line.

    .venv/bin/python benchmarks/robust_overfitting.py --train-limit 2048 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from shiftlab.app.zoo.checks import early_stopping_check
from shiftlab.attacks import ThreatModel, run_attack
from shiftlab.data import load_dataset
from shiftlab.models import load_model
from shiftlab.training import TrainConfig, train
from shiftlab.training.loop import STATE_NAME


def apgd_accuracy(model: torch.nn.Module, n: int, eps: float) -> float:
    x, y = load_dataset("fashion-mnist", "test", limit=n).get_batch(torch.arange(n))
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    _, broken = run_attack("apgd-ce", model, x, y, ThreatModel("linf", eps), torch.Generator().manual_seed(0))
    return float((correct & ~broken).float().mean())


def main() -> None:
    from shiftlab.core.allocator import keep_freed_memory

    keep_freed_memory()  # as the CLI does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-limit", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("runs/robust-overfitting"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    common = dict(recipe="pgd-at", recipe_args=(("eps", str(args.eps)),), epochs=args.epochs,
                  train_limit=args.train_limit, schedule="constant", lr=0.05, seed=0, select_limit=args.val,
                  select_eps=args.eps)
    t0 = time.perf_counter()
    best = train(TrainConfig(out=str(args.out / "selected"), select="adversarial", **common), resume=True)
    seconds = time.perf_counter() - t0
    history = best.card.training["history"]
    print(f"PGD-AT, {args.train_limit} training images, {args.epochs} epochs, constant lr 0.05, eps {args.eps}")
    print(f"{'epoch':>5} {'train acc':>10} {'val clean':>10} {'val PGD-10':>11}")
    for row in history:
        print(f"{row['epoch']:5.0f} {row['train_accuracy']:10.4f} {row['val_accuracy']:10.4f} {row['select_score']:11.4f}")
    check = early_stopping_check(best.card.training)
    kept = best.card.training["selection"]["epoch"]
    kept_model, _ = load_model(best.checkpoint)
    last_model, _ = load_model(best.checkpoint)  # same architecture; the last epoch's weights are in the state
    state = torch.load(best.checkpoint / STATE_NAME, map_location="cpu", weights_only=True)
    last_model.load_state_dict(state["model"])
    test_best = apgd_accuracy(kept_model, args.test, args.eps)
    test_last = apgd_accuracy(last_model.eval(), args.test, args.eps)
    print(f"kept epoch {kept}: test APGD-CE robust accuracy {test_best:.4f}; last epoch: {test_last:.4f}")
    print(f"check ({'holds' if check.holds else 'does not hold' if check.holds is False else 'undecided'}): "
          f"{check.claim} — {check.detail}")
    print(json.dumps({"benchmark": "robust_overfitting", "train_limit": args.train_limit, "epochs": args.epochs,
                      "eps": args.eps, "val_robust": [r["select_score"] for r in history], "kept_epoch": kept,
                      "test_apgd_kept": test_best, "test_apgd_last": test_last, "check_holds": check.holds,
                      "seconds": round(seconds, 1), "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
