"""Scaling out, measured side by side in one run: an evaluation grid on every executor, and training on
1 vs 2 DistributedDataParallel (gloo) processes.

Grid: the zoo models ``--models`` (erm, augmix, pgd-at, gaussian-noise) × the suites clean, corruptions
(19 corruptions × 5 severities), calibration and ood on the first ``--limit`` Fashion-MNIST test images,
run through (a) the local executor (in-process, 1 and 2 torch threads), (b) the process executor with 1
and 2 single-threaded workers, (c) a local Ray (``ray.init(num_cpus=W)``) with 1 and 2 workers — each
into a fresh SQLite store, timed end to end (Ray's start included, and shown separately). Every store must
hold the same numbers (design contract 6: workers never change a number); the benchmark checks it.
From the local run's per-task durations it prints the cost per task kind and per model, and a paper
estimate for a 100-model grid on an N-worker cluster (``--cluster-workers``).

Training: small-cnn ERM for ``--ddp-steps`` steps of global batch ``--ddp-batch`` as (a) one process
with 1 thread, (b) one process with 2 threads, (c) ``torchrun --nproc-per-node 2`` (gloo, 1 thread per
rank); the training loop's own time (the card's epoch seconds: no start-up, validation or test) gives
images per second.

Evaluation numerics: the zoo's ERM model on clean + 4 corruptions (severity 3) of the first
``--precision-limit`` test images on ``--device``, in float32, channels-last, bf16 autocast (and fp16
on CUDA), each into a fresh store: wall time and the accuracies, which autocast may move slightly.

    nice -n 10 .venv/bin/python benchmarks/scaling.py --limit 100
    nice -n 10 .venv/bin/python benchmarks/scaling.py --limit 50 --corruptions gaussian_noise,fog --skip-ddp
    .venv/bin/python benchmarks/scaling.py --skip-grid --skip-ddp --device cuda   # numerics only

Prints the tables, the load average before and after (the machine may be shared), and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "shiftlab" / "models" / "zoo"
SUITES = ("clean", "corruptions", "calibration", "ood")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def store_numbers(path: Path) -> dict[tuple[str, str, str, int], str]:
    """Every task row's metrics but its timings (as sorted JSON, so NaN compares equal) by its identity,
    summaries included."""
    from shiftlab.store import Store

    with Store(path) as db:
        return {r.id.sql(): json.dumps({k: v for k, v in r.metrics.items() if "seconds" not in k}, sort_keys=True)
                for r in db.tasks()}


def task_costs(path: Path) -> dict[str, list[float]]:
    """Per task kind, the duration of each task (summaries left out)."""
    from shiftlab.store import Store

    costs: dict[str, list[float]] = defaultdict(list)
    with Store(path) as db:
        for r in db.tasks():
            if not r.id.task.columns().is_summary:
                costs[type(r.id.task).__name__].append(float(r.duration_s or 0.0))
    return costs


def run_config(label: str, executor: str, workers: int, threads: int, jobs: list[Any], work: Path) -> dict[str, Any]:
    """One grid run into a fresh store; wall time (Ray's start included) and outcome."""
    from shiftlab.app.grid import run_grid

    store = work / f"{label.replace(' ', '-')}.db"
    torch.set_num_threads(threads)
    start = 0.0
    t0 = time.perf_counter()
    if executor == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        start = time.perf_counter() - t0
    try:
        outcomes = run_grid(jobs, store, executor, workers)
    finally:
        if executor == "ray":
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t0
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{label}: {len(failed)} job(s) failed: {failed[0]}")
    return {"label": label, "executor": executor, "workers": workers, "threads": threads, "wall_s": wall,
            "start_s": start, "store": store}


def row_write_seconds(source: Path, work: Path) -> float:
    """Seconds to write one model's rows into a fresh store (what a Ray driver does per job, serially)."""
    from shiftlab.app.grid import copy_rows
    from shiftlab.store import Store

    with Store(source) as db:
        models = db.models()
        rows = db.tasks(models[0].fingerprint)
        t0 = time.perf_counter()
        with Store(work / "write-probe.db") as target:
            target.upsert_model(models[0].fingerprint, name=models[0].name, arch=models[0].arch,
                                dataset=models[0].dataset, recipe=models[0].recipe, num_params=models[0].num_params,
                                card=models[0].card, checkpoint_path=models[0].checkpoint_path)
            copy_rows(target, rows)
        return time.perf_counter() - t0


def grid_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from shiftlab.app.grid import EvalJob

    options: dict[str, Any] = {"corruptions": args.corruptions} if args.corruptions else {}
    jobs = [EvalJob(str(ZOO / name), SUITES, options, limit=args.limit, device="cpu") for name in args.models]
    configs = [(f"local {t} thread{'s' if t > 1 else ''}", "local", 1, t) for t in args.local_threads]
    configs += [(f"processes x{w}", "processes", w, 1) for w in (1, 2)]
    if not args.skip_ray:
        configs += [(f"ray x{w}", "ray", w, 1) for w in (1, 2)]
    threads = torch.get_num_threads()
    results = []
    for label, executor, workers, t in configs:
        print(f"running {label} ...", flush=True)
        results.append(run_config(label, executor, workers, t, jobs, work))
    torch.set_num_threads(threads)

    reference = store_numbers(results[0]["store"])
    identical = all(store_numbers(r["store"]) == reference for r in results[1:])
    base = results[0]["wall_s"]
    print(f"\ngrid: {len(jobs)} models x {'+'.join(SUITES)}, limit {args.limit}, {len(reference)} stored rows; "
          f"the same numbers in every store: {'yes' if identical else 'NO'}")
    print(table(["executor", "workers", "threads", "wall s", "of which start s", f"speed-up vs {results[0]['label']}"],
                [[r["label"], str(r["workers"]), str(r["threads"]), f"{r['wall_s']:.1f}", f"{r['start_s']:.1f}",
                  f"{base / r['wall_s']:.2f}x"] for r in results]))
    by_label = {r["label"]: r["wall_s"] for r in results}
    for kind in ("processes", "ray"):
        if f"{kind} x1" in by_label:
            print(f"{kind}: 2 workers vs 1: {by_label[f'{kind} x1'] / by_label[f'{kind} x2']:.2f}x")

    costs = task_costs(results[0]["store"])
    per_model_tasks = sum(sum(v) for v in costs.values()) / len(jobs)
    print(f"\nper-task cost ({results[0]['label']}, durations from the store):")
    print(table(["task kind", "tasks/model", "mean s", "s/model"],
                [[k, str(len(v) // len(jobs)), f"{sum(v) / len(v):.3f}", f"{sum(v) / len(jobs):.2f}"]
                 for k, v in sorted(costs.items())]))
    local_model = results[0]["wall_s"] / len(jobs)
    proc_model = by_label["processes x1"] / len(jobs)
    write_s = row_write_seconds(results[0]["store"], work)
    overhead = max(0.0, proc_model - per_model_tasks)
    print(f"per model: tasks {per_model_tasks:.1f}s, whole job in-process {local_model:.1f}s, "
          f"as a fresh worker process {proc_model:.1f}s (start-up, model and data loading {overhead:.1f}s); "
          f"writing its {len(reference) // len(jobs)} rows into a store {write_s:.2f}s")

    # a job on a warm Ray worker (imports done once per worker), else on a fresh worker process
    ray1 = next((r for r in results if r["label"] == "ray x1"), None)
    job_s = (ray1["wall_s"] - ray1["start_s"]) / len(jobs) if ray1 else proc_model
    ray_start = ray1["start_s"] if ray1 else 0.0
    print(f"\npaper estimate, 100 models, this protocol and limit, one dedicated core per worker, "
          f"{job_s:.1f}s per job ({'ray x1' if ray1 else 'processes x1'}), cluster start {ray_start:.0f}s; the "
          f"driver writes each job's rows as they arrive, so only the last wave's writes add to the compute:")
    estimate = {}
    rows = []
    for n in args.cluster_workers:
        compute = math.ceil(100 / n) * job_s
        writes = min(n, 100) * write_s
        total = ray_start + compute + writes
        estimate[n] = total
        rows.append([str(n), f"{compute / 60:.1f}", f"{writes:.1f}", f"{total / 60:.1f}"])
    print(table(["workers", "compute min", "last-wave writes s", "estimate min"], rows))
    return {"models": list(args.models), "limit": args.limit, "rows": len(reference), "identical": identical,
            "wall_s": by_label, "ray_start_s": ray_start, "task_s_per_model": per_model_tasks,
            "job_s_per_model": job_s, "process_job_s_per_model": proc_model, "write_s_per_model": write_s,
            "estimate_100_models_s": {str(k): v for k, v in estimate.items()},
            "task_costs_s": {k: sum(v) / len(v) for k, v in costs.items()}}


def train_run(label: str, cmd: list[str], threads: int, out: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=str(REPO))
    t0 = time.perf_counter()
    done = subprocess.run(cmd + ["--out", str(out)], env=env, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{label} failed: {done.stderr[-1500:]}")
    card = json.loads((out / "model.json").read_text())
    seconds = sum(h["seconds"] for h in card["training"]["history"])
    return {"label": label, "wall_s": wall, "loop_s": seconds, "test_accuracy": card["training"]["test_accuracy"]}


def ddp_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    images = args.ddp_steps * args.ddp_batch
    train_args = ["train", "--model", "small-cnn", "--epochs", "1", "--batch-size", str(args.ddp_batch),
                  "--train-limit", str(images), "--device", "cpu"]
    runs = [
        train_run("1 process, 1 thread", [sys.executable, "-m", "shiftlab", *train_args], 1, work / "train-1x1"),
        train_run("1 process, 2 threads", [sys.executable, "-m", "shiftlab", *train_args], 2, work / "train-1x2"),
        train_run("torchrun 2 processes (gloo), 1 thread each",
                  [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "shiftlab", *train_args], 1, work / "train-2x1"),
    ]
    base = images / runs[0]["loop_s"]
    print(f"\ntraining: small-cnn ERM, {args.ddp_steps} steps of global batch {args.ddp_batch} ({images} images)")
    print(table(["run", "loop s", "images/s", "vs 1 process 1 thread", "wall s (with start, val, test)"],
                [[r["label"], f"{r['loop_s']:.1f}", f"{images / r['loop_s']:.0f}",
                  f"{images / r['loop_s'] / base:.2f}x", f"{r['wall_s']:.1f}"] for r in runs]))
    return {"steps": args.ddp_steps, "batch": args.ddp_batch,
            "images_per_s": {r["label"]: images / r["loop_s"] for r in runs},
            "wall_s": {r["label"]: r["wall_s"] for r in runs}}


def precision_benchmark(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The zoo's ERM model on clean + one corruption per family, float32 vs channels-last vs autocast."""
    import shiftlab
    from shiftlab.core.devices import resolve_device

    device = resolve_device(args.device)
    settings: list[tuple[str, str | None, bool]] = [("float32", None, False), ("channels-last", None, True),
                                                    ("bf16", "bf16", False), ("bf16 + channels-last", "bf16", True)]
    if device.type == "cuda":
        settings += [("fp16", "fp16", False), ("fp16 + channels-last", "fp16", True)]
    options = {"corruptions": "gaussian_noise,defocus_blur,fog,jpeg_compression", "severities": "3"}
    shiftlab.evaluate("zoo:erm", ["clean", "corruptions"], limit=64, device=str(device), **options)  # warm-up
    runs = []
    for label, amp, channels_last in settings:
        t0 = time.perf_counter()
        report = shiftlab.evaluate("zoo:erm", ["clean", "corruptions"], store=work / f"precision-{len(runs)}.db",
                                   limit=args.precision_limit, device=str(device), amp=amp,
                                   channels_last=channels_last, batch_size=args.precision_batch, **options)
        seconds = time.perf_counter() - t0
        clean = next(r.metrics["accuracy"] for r in report.rows if r.suite == "clean")
        summary = next(r for r in report.rows if r.suite == "corruptions" and r.id.task.columns().is_summary)
        runs.append({"label": label, "s": seconds, "clean": clean,
                     "corruption_acc": summary.metrics["mean_corruption_accuracy"]})
    base = runs[0]["s"]
    print(f"\nevaluation numerics on {device}: zoo:erm, clean + 4 corruptions at severity 3, "
          f"{args.precision_limit} images, batch {args.precision_batch}")
    print(table(["setting", "wall s", "vs float32", "clean acc", "corruption acc"],
                [[r["label"], f"{r['s']:.2f}", f"{base / r['s']:.2f}x", f"{100 * r['clean']:.2f}",
                  f"{100 * r['corruption_acc']:.2f}"] for r in runs]))
    return {"device": str(device), "limit": args.precision_limit, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=lambda s: s.split(","), default=["erm", "augmix", "pgd-at", "gaussian-noise"])
    parser.add_argument("--limit", type=int, default=100, help="test images per model")
    parser.add_argument("--corruptions", default=None, help="comma-separated corruption subset (default: all)")
    parser.add_argument("--local-threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2])
    parser.add_argument("--cluster-workers", type=lambda s: [int(t) for t in s.split(",")], default=[1, 8, 32, 100])
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--ddp-steps", type=int, default=40)
    parser.add_argument("--ddp-batch", type=int, default=128)
    parser.add_argument("--skip-precision", action="store_true")
    parser.add_argument("--device", default="auto", help="device of the precision comparison")
    parser.add_argument("--precision-limit", type=int, default=2000)
    parser.add_argument("--precision-batch", type=int, default=256)
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, CUDA: {torch.cuda.is_available()}, torch {torch.__version__}, "
          f"load average {load_before[0]:.2f}", flush=True)
    result: dict[str, Any] = {"benchmark": "scaling", "cpus": os.cpu_count(), "load_before": load_before[0]}
    with tempfile.TemporaryDirectory(prefix="shiftlab-scaling-") as tmp:
        work = Path(tmp)
        if not args.skip_grid:
            result["grid"] = grid_benchmark(args, work)
        if not args.skip_ddp:
            result["ddp"] = ddp_benchmark(args, work)
        if not args.skip_precision:
            result["precision"] = precision_benchmark(args, work)
    result["load_after"] = os.getloadavg()[0]
    print(f"\nload average after: {result['load_after']:.2f}")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
