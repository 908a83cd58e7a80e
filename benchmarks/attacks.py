"""Attack speed and strength: shiftlab vs torchattacks on the same model, images and run.

Usage: nice -n 10 .venv/bin/python benchmarks/attacks.py [--model zoo/pgd-at] [--n 1000] [--threads 2]
    [--only APGD-CE(100),Square(1000),autoattack-standard] [--skip PGD-50]
Prints a table (wall seconds, robust accuracy, speed-up) and a final JSON line. Linf eps 0.1 on the
first N Fashion-MNIST test images; ``--model`` takes any checkpoint directory (model.safetensors +
model.json, or zoo:NAME such as zoo:erm or zoo:pgd-at); default: the ERM small-cnn of the test fixtures.
The ensemble row compares shiftlab's autoattack-standard with the same ensemble built from
torchattacks parts at the official budgets (APGD(100) → APGD-T(100, 9 targets) → FAB-T(100,
9 targets) → Square(5000), ``torchattacks.MultiAttack``); torchattacks.AutoAttack(version='standard')
is listed for reference only: it runs 10 steps per sub-attack, not AutoAttack's official 100. The
Square rows run the black-box attack alone on every image (``torchattacks.Square``, 1 restart).
shiftlab's randomness is keyed by test-image index (``ImageStreams.for_images``, seed 0).
The load average before and after is printed, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

EPS = 0.1


def main() -> None:
    from shiftlab.core.allocator import keep_freed_memory

    allocator = keep_freed_memory()  # as the CLI does; both sides of the comparison run with it
    import torchattacks as ta
    from conftest import trained_checkpoint

    from shiftlab.attacks import ENSEMBLES, ThreatModel, run_attack, run_ensemble
    from shiftlab.core.seeding import ImageStreams
    from shiftlab.data import load_dataset
    from shiftlab.models import load_model, locate

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", "--checkpoint", dest="model", default=None,
                    help="checkpoint directory or zoo:NAME (default: the test fixtures' ERM small-cnn)")
    ap.add_argument("--only", default="", help="comma-separated rows to run (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated rows to skip")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model is not None and not (locate(args.model) / "model.json").exists():
        ap.error(f"--model {args.model}: no model.json there; pass a checkpoint directory or zoo:NAME (e.g. zoo:erm)")
    model, card = load_model(args.model or trained_checkpoint("small-cnn-erm-1ep", epochs=1))
    x, y = load_dataset("fashion-mnist", "test", limit=args.n).get_batch(torch.arange(args.n))
    bs = 250
    rng = ImageStreams.for_images(0, "benchmark", torch.arange(args.n))  # per-image randomness, seed 0

    def ta_run(attack) -> float:
        x_adv = torch.cat([attack(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)])
        with torch.no_grad():
            return float((model(x_adv).argmax(1) == y).float().mean())

    def ours_single(name: str, **budget) -> float:
        _, broken = run_attack(name, model, x, y, ThreatModel("linf", EPS, **budget), rng, bs)
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        return float((clean & ~broken).float().mean())

    breakdown: dict[str, dict[str, float]] = {}

    def ours_ensemble() -> float:
        res = run_ensemble(model, x, y, ThreatModel("linf", EPS), ENSEMBLES.get("autoattack-standard"),
                           rng, bs)
        broke = collections.Counter(b for b in res.broken_by if b is not None)
        breakdown.update({name: {"seconds": round(sec, 2), "broke": broke[name]} for name, sec in res.seconds.items()})
        return res.robust_accuracy

    def ours_ensemble_contiguous() -> float:
        """The same ensemble with the channels-last layout switched off (how much of the speed is layout)."""
        import shiftlab.attacks.base as base

        layout = base.channels_last
        base.channels_last = lambda m, probe: layout(m, None)
        try:
            return run_ensemble(model, x, y, ThreatModel("linf", EPS), ENSEMBLES.get("autoattack-standard"),
                                rng, bs).robust_accuracy
        finally:
            base.channels_last = layout

    ta_ens = ta.MultiAttack([
        ta.APGD(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, loss="ce", seed=0),
        ta.APGDT(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, n_classes=10, seed=0),
        ta.FAB(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, multi_targeted=True, n_classes=10, seed=0),
        ta.Square(model, norm="Linf", eps=EPS, n_queries=5000, n_restarts=1, seed=0),
    ])
    rows = [
        ("PGD-10", lambda: ours_single("pgd", steps=10, step_size=EPS / 4),
         lambda: ta_run(ta.PGD(model, eps=EPS, alpha=EPS / 4, steps=10, random_start=True))),
        ("PGD-50", lambda: ours_single("pgd", steps=50, step_size=EPS / 20),
         lambda: ta_run(ta.PGD(model, eps=EPS, alpha=EPS / 20, steps=50, random_start=True))),
        ("APGD-CE(100)", lambda: ours_single("apgd-ce", steps=100),
         lambda: ta_run(ta.APGD(model, norm="Linf", eps=EPS, steps=100, n_restarts=1, loss="ce", seed=0))),
        ("Square(1000)", lambda: ours_single("square", n_queries=1000),
         lambda: ta_run(ta.Square(model, norm="Linf", eps=EPS, n_queries=1000, n_restarts=1, seed=0))),
        ("Square(5000)", lambda: ours_single("square", n_queries=5000),
         lambda: ta_run(ta.Square(model, norm="Linf", eps=EPS, n_queries=5000, n_restarts=1, seed=0))),
        ("autoattack-standard", ours_ensemble, lambda: ta_run(ta_ens)),
        ("autoattack-standard (contiguous)", ours_ensemble_contiguous, None),
        ("ta.AutoAttack standard (10 steps)", None,
         lambda: ta_run(ta.AutoAttack(model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0))),
    ]
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    unknown = (skip | only) - {name for name, _, _ in rows}
    if unknown:
        ap.error(f"unknown rows {sorted(unknown)}; rows are: {[name for name, _, _ in rows]}")
    results = []
    load_before = os.getloadavg()
    with torch.no_grad():
        clean_acc = float((model(x).argmax(1) == y).float().mean())
    print(f"model {card.name} ({card.fingerprint[:12]}, clean accuracy {clean_acc:.3f}), {args.n} images, "
          f"Linf eps={EPS}, torch threads={torch.get_num_threads()}, load average {load_before[0]:.2f}, "
          f"malloc keeps freed memory: {allocator}", flush=True)
    print(f"{'attack':36s} {'shiftlab s':>10s} {'robust':>7s} {'torchattacks s':>14s} {'robust':>7s} {'speed-up':>8s}")
    for name, ours, theirs in rows:
        if name in skip or (only and name not in only):
            continue
        t_ours = ra = t_theirs = rb = speedup = None
        if ours is not None:
            t0 = time.perf_counter()
            ra = ours()
            t_ours = time.perf_counter() - t0
        if theirs is not None:
            t0 = time.perf_counter()
            rb = theirs()
            t_theirs = time.perf_counter() - t0
        if t_ours and t_theirs:
            speedup = t_theirs / t_ours
        results.append({"attack": name, "shiftlab_s": t_ours, "shiftlab_robust": ra,
                        "torchattacks_s": t_theirs, "torchattacks_robust": rb, "speedup": speedup})

        def cell(v: float | None, fmt: str, width: int) -> str:
            return format(v, fmt).rjust(width) if v is not None else "–".rjust(width)

        print(f"{name:36s} {cell(t_ours, '.1f', 10)} {cell(ra, '.3f', 7)} {cell(t_theirs, '.1f', 14)} "
              f"{cell(rb, '.3f', 7)} {cell(speedup, '.2f', 7)}x", flush=True)
    if breakdown:
        print(f"shiftlab autoattack-standard per attack: {breakdown}")
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f}")
    print(json.dumps({"benchmark": "attacks", "keep_freed_memory": allocator, "model": card.name, "fingerprint": card.fingerprint, "n": args.n,
                      "eps": EPS, "threads": torch.get_num_threads(), "clean_accuracy": clean_acc,
                      "load_before": load_before[0], "load_after": load_after[0],
                      "ensemble_breakdown": breakdown, "rows": results}))


if __name__ == "__main__":
    main()
