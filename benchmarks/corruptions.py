"""Images per second of shiftlab's corruptions vs imagecorruptions 1.1.2, measured side by side.

Both run with ``--threads`` threads (torch.set_num_threads, cv2.setNumThreads; default 1; the reference's
numpy/PIL/scikit-image code is single-threaded whatever the setting) on the same real Fashion-MNIST
images at severity 3 with ImageNet-C parameters (what imagecorruptions always uses): 28×28 gray,
32×32 RGB (gray stacked) and 224×224 RGB (bilinear resize, stacked). shiftlab corrupts one batch of
``--n`` images in one call; imagecorruptions loops over ``--n-ref`` images (fewer: it is per image).
Both report the best of ``--repeats`` runs (the reference's glass_blur at 224 px: one run of two images).
Prints a table, the geometric-mean speed-up per size and overall, the 1-minute load average before and
after, and a final JSON line.

    nice -n 10 .venv/bin/python benchmarks/corruptions.py --n 64 --n-ref 8 [--threads 2]
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


def main() -> None:
    from shiftlab.allocator import keep_freed_memory

    allocator = keep_freed_memory()  # as the CLI does; both sides of the comparison run with it
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=64, help="images per shiftlab batch")
    parser.add_argument("--n-ref", type=int, default=8, help="images for imagecorruptions (per-image loop)")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated corruption names")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    args = parser.parse_args()

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
          f"malloc keeps freed memory (shiftlab.allocator): {allocator}")
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
    def geomean(values: list[float]) -> float | None:
        return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None

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


if __name__ == "__main__":
    main()
