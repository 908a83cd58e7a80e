"""Attack speed and strength: shiftlab vs torchattacks on the same model, images and run.

Usage: nice -n 10 .venv/bin/python benchmarks/attacks.py [--n 1000] [--threads 2] [--checkpoint DIR]
Prints a table (wall seconds, robust accuracy, speed-up) and a final JSON line. Linf eps 0.1 on the
first N Fashion-MNIST test images; default model: the ERM small-cnn of the test fixtures.
torchattacks.AutoAttack(version='standard') is listed for reference only: it runs 10 steps per
sub-attack, not AutoAttack's official 100.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

EPS = 0.1


def main() -> None:
    import torchattacks as ta
    from conftest import trained_checkpoint

    from shiftlab.attacks import ENSEMBLES, ThreatModel, run_attack, run_ensemble
    from shiftlab.data import load_dataset
    from shiftlab.models import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--skip", default="", help="comma-separated rows to skip")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, card = load_model(args.checkpoint or trained_checkpoint("small-cnn-erm-1ep", epochs=1))
    x, y = load_dataset("fashion-mnist", "test", limit=args.n).get_batch(torch.arange(args.n))
    bs = 250

    def ta_run(attack) -> float:
        x_adv = torch.cat([attack(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)])
        with torch.no_grad():
            return float((model(x_adv).argmax(1) == y).float().mean())

    def ours_single(name: str, **budget) -> float:
        _, broken = run_attack(name, model, x, y, ThreatModel("linf", EPS, **budget), torch.Generator().manual_seed(0), bs)
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        return float((clean & ~broken).float().mean())

    def ours_ensemble() -> float:
        return run_ensemble(model, x, y, ThreatModel("linf", EPS), ENSEMBLES.get("autoattack-standard"),
                            torch.Generator().manual_seed(0), bs).robust_accuracy

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
        ("autoattack-standard", ours_ensemble, lambda: ta_run(ta_ens)),
        ("ta.AutoAttack(standard, 10 steps)", None,
         lambda: ta_run(ta.AutoAttack(model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0))),
    ]
    skip = set(filter(None, args.skip.split(",")))
    results = []
    print(f"model {card.name} ({card.fingerprint[:12]}), {args.n} images, Linf eps={EPS}, "
          f"torch threads={torch.get_num_threads()}", flush=True)
    print(f"{'attack':36s} {'shiftlab s':>10s} {'robust':>7s} {'torchattacks s':>14s} {'robust':>7s} {'speed-up':>8s}")
    for name, ours, theirs in rows:
        if name in skip:
            continue
        t0 = time.perf_counter()
        ra = ours() if ours else float("nan")
        t_ours = time.perf_counter() - t0 if ours else float("nan")
        t0 = time.perf_counter()
        rb = theirs()
        t_theirs = time.perf_counter() - t0
        results.append({"attack": name, "shiftlab_s": t_ours, "shiftlab_robust": ra,
                        "torchattacks_s": t_theirs, "torchattacks_robust": rb, "speedup": t_theirs / t_ours})
        print(f"{name:36s} {t_ours:10.1f} {ra:7.3f} {t_theirs:14.1f} {rb:7.3f} {t_theirs / t_ours:7.2f}x", flush=True)
    print(json.dumps({"benchmark": "attacks", "n": args.n, "eps": EPS, "threads": torch.get_num_threads(),
                      "rows": results}))


if __name__ == "__main__":
    main()
