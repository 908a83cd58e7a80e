"""Fan zoo work out to CLI worker processes, one torch thread each.

The zoo's models are small: one single-threaded process per core uses a CPU better than one process
with intra-op threads (OpenMP barriers dominate at these sizes). ``zoo train --jobs`` and
``zoo evaluate --jobs`` both run ``python -m shiftlab.cli zoo …`` workers through ``run_workers``;
each worker resumes what is already done, so a failed or interrupted fan-out is simply rerun.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from shiftlab.errors import UserError


def run_workers(worker_args: list[list[str]], what: str, show_output: bool = False) -> None:
    """Run ``shiftlab`` with each argument list as its own process (OMP_NUM_THREADS=1) and wait for all.

    stderr (progress bars, errors) goes to a file per worker, so parallel bars never interleave and
    a full pipe never blocks a worker; stdout is shown when ``show_output``. A failing worker raises
    UserError with its last stderr line.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="shiftlab-workers-") as tmp:
        logs = [Path(tmp) / f"worker{i}.err" for i in range(len(worker_args))]
        procs = []
        for args, log in zip(worker_args, logs, strict=True):
            with log.open("w") as err:
                procs.append(subprocess.Popen([sys.executable, "-m", "shiftlab.cli", *args], env=env, stderr=err,
                                              stdout=None if show_output else subprocess.DEVNULL))
        codes = [p.wait() for p in procs]
        failed = [log.read_text().strip().splitlines()[-1:] for log, code in zip(logs, codes, strict=True) if code]
    if failed:
        lines = " | ".join(lines[0] for lines in failed if lines) or "no error output"
        raise UserError(f"{what} failed in {len(failed)} of {len(procs)} worker(s) (rerun to resume): {lines}")
