"""Per-step cost of every training recipe next to ERM, small-cnn on real Fashion-MNIST batches.

The target (issue): an AugMix epoch costs at most 4× an ERM epoch. Recipes are timed in
alternating rounds (ERM, recipe, ERM, ...) so load changes on a shared machine hit both alike;
the reported time is the median step time. Prints a table and a final JSON line.

    nice -n 10 python benchmarks/recipes.py --steps 20 --recipes erm,augmix,mixup
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from shiftlab.core.seeding import isolated_global_rng, make_generator
from shiftlab.data import load_dataset
from shiftlab.models import build_model, config_for
from shiftlab.training import RECIPES, StepContext, TrainConfig, build_recipe
from shiftlab.training.loop import make_optimizer


def step_times(name: str, data, batch_size: int, steps: int) -> list[float]:
    recipe = build_recipe(name)
    with isolated_global_rng(0):
        model = build_model(config_for("small-cnn", data.info))
    recipe.setup(model)
    optimizer = make_optimizer(TrainConfig(out="unused", batch_size=batch_size), model)
    model.train()
    n_batches = len(data) // batch_size
    times = []
    for i in range(steps + 2):
        b = i % n_batches
        x, y = data.get_batch(torch.arange(b * batch_size, (b + 1) * batch_size))
        ctx = StepContext(make_generator(0, "bench", i), 0, i, steps, 1, 0.0, 10)
        t0 = time.perf_counter()
        out = recipe.step(model, x, y, ctx)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    from shiftlab.core.allocator import keep_freed_memory

    keep_freed_memory()  # as the CLI does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternating ERM/recipe rounds")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--recipes", default=",".join(n for n in RECIPES.names() if n != "erm"))
    args = parser.parse_args()
    data = load_dataset("fashion-mnist", "train", limit=args.batch_size * 8)
    names = [n for n in args.recipes.split(",") if n and n != "erm"]
    erm_times: list[float] = []
    times: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):
        for name in names:  # each recipe block right after its own ERM block; the ratio is per pair
            erm = statistics.median(step_times("erm", data, args.batch_size, args.steps))
            med = statistics.median(step_times(name, data, args.batch_size, args.steps))
            erm_times.append(erm)
            times[name].append(med)
            ratios[name].append(med / erm)
            print(f"  {name}: {1000 * med:.1f} ms/step vs erm {1000 * erm:.1f} -> {med / erm:.2f}x",
                  file=sys.stderr, flush=True)
    print(f"{'recipe':<18}{'erm ms':>10}{'ms/step':>10}{'× ERM':>8}   (small-cnn, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads; median over {args.rounds} paired rounds)")
    result = {}
    for name in names:
        erm_ms = 1000 * statistics.median(erm_times)
        med, ratio = statistics.median(times[name]), statistics.median(ratios[name])
        result[name] = {"ms_per_step": round(1000 * med, 2), "erm_ms_per_step": round(erm_ms, 2),
                        "ratio_to_erm": round(ratio, 2)}
        print(f"{name:<18}{erm_ms:>10.1f}{1000 * med:>10.1f}{ratio:>8.2f}")
    print(json.dumps({"benchmark": "recipes", "batch_size": args.batch_size, "steps": args.steps, "results": result}))


if __name__ == "__main__":
    main()
