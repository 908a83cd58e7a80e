"""Run by test_certify.py in a subprocess: one certify cell over 64 images (4 blocks), killable midway.

Prints ``BLOCK <first image index>`` for every block it certifies (not for blocks read back from the
store), so the test sees which blocks a resumed run recomputed.
"""

import sys

import torch

import shiftlab.certify.smoothing as smoothing
from shiftlab.app.evaluate import evaluate_model

OPTIONS = {"sigma": "0.25", "n": "200", "n0": "16", "alpha": "0.001"}
LIMIT = 64


def logged(certify):
    def run(self, x, n0, n, alpha, noise):
        print("BLOCK", noise.indices[0], flush=True)
        return certify(self, x, n0, n, alpha, noise)

    return run


if __name__ == "__main__":
    model, store_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    smoothing.Smoothed.certify = logged(smoothing.Smoothed.certify)
    report = evaluate_model(model, ["certify"], store=store_path, options=OPTIONS, limit=LIMIT, device="cpu")
    print("RAN", ",".join(report.ran), flush=True)
