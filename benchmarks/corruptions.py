"""Images per second of shiftlab's corruptions vs imagecorruptions 1.1.2, measured side by side.

Both run with ``--threads`` threads (torch.set_num_threads, cv2.setNumThreads; default 1; the reference's
numpy/PIL/scikit-image code is single-threaded whatever the setting) on the same real Fashion-MNIST
images at severity 3 with ImageNet-C parameters (what imagecorruptions always uses): 28×28 gray,
32×32 RGB (gray stacked) and 224×224 RGB (bilinear resize, stacked). shiftlab corrupts one batch of
``--n`` images in one call; imagecorruptions loops over ``--n-ref`` images (fewer: it is per image).
Both report the best of ``--repeats`` runs (the reference's glass_blur at 224 px: one run of two images).
Prints a table, the geometric-mean speed-up per size and overall, the 1-minute load average before and
after, and a final JSON line.

``--end-to-end`` instead times the full 19 × 5 corrupted copy of N images, as `shiftlab corrupt` writes it
(``export_corrupted``: every corruption at severities 1..5, uint8 files in the CIFAR-10-C layout, on
``--workers`` threads), at each size of ``--sizes`` (SIZE:N pairs; Fashion-MNIST test images resized
bilinearly, 3 channels), against imagecorruptions on the same images: the reference runs per corruption
and severity on the first ``--e2e-ref`` images of each size (SIZE:M pairs; its per-image loop, uint8 out as
``imagecorruptions.corrupt``, each severity's images stacked and written to a .npy file as shiftlab writes
its own) and its time is extrapolated linearly to N. Per-corruption cells use
ImageNet-C parameters on both sides (the only ones imagecorruptions has); the wall time of the whole copy is
also measured with the parameter table `shiftlab corrupt` picks by size (cifar at 32 px).

    nice -n 10 .venv/bin/python benchmarks/corruptions.py --n 64 --n-ref 8 [--threads 2]
    nice -n 10 .venv/bin/python benchmarks/corruptions.py --end-to-end --sizes 32:10000,224:200
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def size_pairs(text: str) -> dict[int, int]:
    """"32:10000,224:200" -> {32: 10000, 224: 200}."""
    return {int(a): int(b) for a, b in (item.split(":") for item in text.split(","))}


def main() -> None:
    from shiftlab.core.allocator import keep_freed_memory

    allocator = keep_freed_memory()  # as the CLI does; both sides of the comparison run with it
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="images per shiftlab batch")
    parser.add_argument("--n-ref", type=int, default=8, help="images for imagecorruptions (per-image loop)")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated corruption names")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--end-to-end", action="store_true",
                        help="time the full 19 x 5 copy through export_corrupted (see the module docstring)")
    parser.add_argument("--sizes", default="32:10000,224:200", help="end to end: SIZE:N image sizes and counts")
    parser.add_argument("--e2e-ref", default="32:20,224:3",
                        help="end to end: SIZE:M reference images per corruption and severity (extrapolated to N)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="end to end: export_corrupted's worker threads (torch and OpenCV threads too)")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args, allocator)
        return

    import cv2
    from imagecorruptions_oracle import load
    from PIL import Image

    from shiftlab.data import load_dataset
    from shiftlab.shifts import SHIFTS

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    ic = load()
    names = args.only.split(",") if args.only else SHIFTS.names()
    base, _ = load_dataset("fashion-mnist", "test", limit=args.n).get_batch(torch.arange(args.n))
    configs = {
        "28x28 gray": base,
        "32x32 rgb": F.interpolate(base, size=32, mode="bilinear").clamp(0, 1).expand(-1, 3, -1, -1).contiguous(),
        "224x224 rgb": F.interpolate(base, size=224, mode="bilinear").clamp(0, 1).expand(-1, 3, -1, -1).contiguous(),
    }
    rows = []
    load_before = os.getloadavg()[0]
    print(f"threads: torch {torch.get_num_threads()}, cv2 {cv2.getNumThreads()}; severity {args.severity}; "
          f"shiftlab batch {args.n}, reference {args.n_ref} images; load average (1 min) {load_before:.2f}; "
          f"malloc keeps freed memory (shiftlab.core.allocator): {allocator}")
    print(f"{'size':<12} {'corruption':<18} {'shiftlab img/s':>15} {'imagecorr img/s':>16} {'speed-up':>9}")
    for label, x in configs.items():
        x = torch.round(x * 255) / 255
        u8 = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        pil = [Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im) for im in u8]
        for name in names:
            fn = SHIFTS.get(name)
            fn(x[:2], args.severity, torch.Generator().manual_seed(0), "imagenet")  # warm-up (lazy library loads)
            ours = best_of(lambda fn=fn, x=x: fn(x, args.severity, torch.Generator().manual_seed(0), "imagenet"),
                           args.repeats)
            ours_ips = len(x) / ours
            slow_ref = name == "glass_blur" and "224" in label
            n_ref = max(1, args.n_ref // 4) if slow_ref else args.n_ref
            ref_fn = getattr(ic, name)

            def run_ref(ref_fn=ref_fn, pil=pil, n_ref=n_ref) -> None:  # type: ignore[no-untyped-def]
                np.random.seed(0)
                for im in pil[:n_ref]:
                    np.uint8(ref_fn(im, args.severity))

            try:
                ref_ips: float | None = n_ref / best_of(run_ref, 1 if slow_ref else args.repeats)
            except Exception as exc:  # imagecorruptions fails on some gray inputs
                ref_ips, err = None, type(exc).__name__
            speedup = ours_ips / ref_ips if ref_ips else None
            ref_txt = f"{ref_ips:16.1f}" if ref_ips else f"{'error: ' + err:>16}"
            sp_txt = f"{speedup:8.1f}×" if speedup else f"{'-':>9}"
            print(f"{label:<12} {name:<18} {ours_ips:15.1f} {ref_txt} {sp_txt}", flush=True)
            rows.append({"size": label, "corruption": name, "shiftlab_ips": ours_ips, "reference_ips": ref_ips,
                         "speedup": speedup})
    ups = [r["speedup"] for r in rows if r["speedup"]]
    geo = geomean(ups)
    per_size = {label: geomean([r["speedup"] for r in rows if r["speedup"] and r["size"] == label])
                for label in configs}
    slower = [f"{r['size']}/{r['corruption']}" for r in rows if r["speedup"] and r["speedup"] < 1]
    load_after = os.getloadavg()[0]
    for label, g in per_size.items():
        print(f"geometric-mean speed-up {label}: {g:.1f}×" if g else f"{label}: no pairs")
    print(f"geometric-mean speed-up {geo:.1f}× over {len(ups)} pairs; slower than the reference: {slower or 'none'}; "
          f"load average (1 min) {load_before:.2f} -> {load_after:.2f}")
    print(json.dumps({"benchmark": "corruptions", "threads": args.threads, "keep_freed_memory": allocator, "severity": args.severity, "n": args.n,
                      "n_ref": args.n_ref, "repeats": args.repeats, "geomean_speedup": geo,
                      "geomean_by_size": per_size, "slower": slower, "load_avg_1min": [load_before, load_after],
                      "results": rows}))


def end_to_end(args: argparse.Namespace, allocator: bool) -> None:
    """The full 19 × 5 copy through export_corrupted against imagecorruptions, per size (see the docstring)."""
    import shutil
    import tempfile

    import cv2
    from imagecorruptions_oracle import load
    from PIL import Image

    from shiftlab.data import load_dataset
    from shiftlab.data.base import DatasetInfo, TensorImageDataset
    from shiftlab.evaluation.export import export_corrupted
    from shiftlab.shifts import SEVERITIES, SHIFTS, resolve_table

    torch.set_num_threads(args.workers)
    cv2.setNumThreads(args.workers)
    ic = load()
    names = args.only.split(",") if args.only else SHIFTS.names()
    sizes, refs = size_pairs(args.sizes), size_pairs(args.e2e_ref)
    scratch = Path(tempfile.mkdtemp(prefix="shiftlab-bench-"))
    load_before = os.getloadavg()[0]
    print(f"end to end: {len(names)} corruptions x severities {list(SEVERITIES)}; shiftlab export_corrupted on "
          f"{args.workers} worker threads, imagecorruptions per image (cv2 threads {cv2.getNumThreads()}); "
          f"load average (1 min) {load_before:.2f}; malloc keeps freed memory: {allocator}")
    results = []
    summary = {}
    try:
        for size, n in sizes.items():
            n_ref = min(refs.get(size, 5), n)
            x, y = load_dataset("fashion-mnist", "test", limit=n).get_batch(torch.arange(n))
            x = F.interpolate(x, size=size, mode="bilinear").clamp(0, 1).expand(-1, 3, -1, -1)
            images = torch.round(x * 255).to(torch.uint8).contiguous()
            info = DatasetInfo(f"fashion-mnist@{size}", 10, tuple(str(i) for i in range(10)), 3, (size, size),
                               (0.5,) * 3, (0.25,) * 3)
            dataset = TensorImageDataset(images, y, info)
            pil = [Image.fromarray(im) for im in images[:n_ref].permute(0, 2, 3, 1).numpy()]
            export_corrupted(dataset.subset(torch.arange(min(n, 8))), scratch / "warm", names, [1], 0, "imagenet",
                             workers=args.workers)  # lazy imports and caches, outside the timings
            shutil.rmtree(scratch / "warm")
            print(f"\n{size}x{size} RGB, N = {n}: shiftlab writes all N x 5 severities; imagecorruptions runs "
                  f"{n_ref} images x 5 severities per corruption, extrapolated x{n / n_ref:.0f} to N")
            print(f"{'corruption':<18} {'shiftlab s':>11} {'ref s (measured)':>17} {'ref s (x N)':>12} {'speed-up':>9}")
            rows = []
            for name in names:
                t0 = time.perf_counter()
                export_corrupted(dataset, scratch / name, [name], list(SEVERITIES), 0, "imagenet", workers=args.workers)
                ours = time.perf_counter() - t0
                shutil.rmtree(scratch / name)
                ref_fn = getattr(ic, name)
                t0 = time.perf_counter()
                for severity in SEVERITIES:
                    np.random.seed(0)
                    np.save(scratch / "reference.npy", np.stack([np.uint8(ref_fn(im, severity)) for im in pil]))
                ref_measured = time.perf_counter() - t0
                ref_full = ref_measured * n / n_ref
                speedup = ref_full / ours
                print(f"{name:<18} {ours:11.2f} {ref_measured:17.2f} {ref_full:12.1f} {speedup:8.1f}x", flush=True)
                rows.append({"size": size, "corruption": name, "n": n, "shiftlab_s": ours, "n_ref": n_ref,
                             "reference_measured_s": ref_measured, "reference_extrapolated_s": ref_full,
                             "speedup": speedup})
            default_table = resolve_table(None, size, size)
            t0 = time.perf_counter()
            export_corrupted(dataset, scratch / "full", names, list(SEVERITIES), 0, None, workers=args.workers)
            full = time.perf_counter() - t0
            shutil.rmtree(scratch / "full")
            ours_total = sum(r["shiftlab_s"] for r in rows)
            ref_total = sum(r["reference_extrapolated_s"] for r in rows)
            geo = geomean([r["speedup"] for r in rows])
            worst = min(rows, key=lambda r: r["speedup"])
            summary[size] = {"n": n, "n_ref": n_ref, "geomean_speedup": geo, "min_speedup": worst["speedup"],
                             "min_cell": worst["corruption"], "shiftlab_imagenet_table_s": ours_total,
                             "reference_extrapolated_s": ref_total, "total_speedup": ref_total / ours_total,
                             "full_copy_table": default_table, "full_copy_wall_s": full}
            print(f"{size} px: geometric-mean speed-up {geo:.1f}x, lowest {worst['speedup']:.1f}x ({worst['corruption']}); "
                  f"whole copy (ImageNet-C parameters) shiftlab {ours_total:.1f} s vs imagecorruptions "
                  f"{ref_total:.0f} s extrapolated ({ref_total / ours_total:.1f}x)")
            print(f"{size} px: `shiftlab corrupt` copy of {n} images x {len(names)} x 5 with its default table "
                  f"({default_table}): {full:.1f} s wall")
            results.extend(rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()[0]
    print(f"load average (1 min) {load_before:.2f} -> {load_after:.2f}")
    print(json.dumps({"benchmark": "corruptions-end-to-end", "workers": args.workers, "keep_freed_memory": allocator,
                      "sizes": summary, "load_avg_1min": [load_before, load_after],
                      "reference_extrapolated_from": "first n_ref images per corruption and severity, times N / n_ref",
                      "results": results}))


if __name__ == "__main__":
    main()
