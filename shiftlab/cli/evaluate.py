"""``shiftlab evaluate``: run suites on a checkpoint into the store.

The command's options are the run's own (model, data, seed, limit, ...) plus every option any
registered suite declares (its :class:`~shiftlab.evaluation.flags.Flag`), so a new suite's options
appear here without editing this file. Every value is validated before anything is loaded.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from shiftlab.cli.common import command, console, err_console
from shiftlab.cli.progress import eval_progress
from shiftlab.cli.render import print_results
from shiftlab.core.errors import UserError
from shiftlab.evaluation.suite import all_flags
from shiftlab.store import TaskRow

if TYPE_CHECKING:
    from shiftlab.evaluation import RunOptions

DEFAULT_STORE = "results/shiftlab.db"
STORE_HELP = "results store: a SQLite file, or a PostgreSQL URL (postgresql://user@host:port/db)"


def rows_to_json(rows: list[TaskRow]) -> list[dict[str, Any]]:
    return [{"task": r.id.task.key(), "label": r.id.task.label(), "suite": r.suite, "dataset": r.id.dataset.label,
             "dataset_content": r.id.dataset.content, "seed": r.id.seed, "model_fingerprint": r.id.fingerprint,
             "params": r.params, "metrics": {k: (None if v != v else v) for k, v in r.metrics.items()},
             "shiftlab_version": r.shiftlab_version} for r in rows]


def evaluate(model: str, dataset: str | None, suite: list[str], store: str, data_root: Path | None,
             limit: int | None, seed: int, batch_size: int, device: str, as_json: bool, download: bool,
             pretrained: str | None, executor: str, jobs: int, ray_address: str | None, amp: str | None,
             channels_last: bool, **options: Any) -> None:
    """Evaluate a checkpoint on one or more suites; results go to the store, finished tasks are never redone."""
    from shiftlab.app.evaluate import evaluate_model
    from shiftlab.evaluation import RunOptions

    given = {k: v for k, v in options.items() if v not in (None, [], ())}
    if executor != "local":  # one job per suite on the executor, then the (now complete) run shows the rows
        run = RunOptions(seed=seed, limit=limit, batch_size=batch_size, device=device, amp=amp,
                         channels_last=channels_last)
        fan_out(model, suite, store, given, dataset, data_root, run, executor, jobs, ray_address)
    with eval_progress() as progress:
        report = evaluate_model(model, suite, store=store, options=given, dataset=dataset, data_root=data_root,
                                seed=seed, limit=limit, batch_size=batch_size, device=device, progress=progress,
                                download=download, pretrained=pretrained, amp=amp, channels_last=channels_last)
    if as_json:
        print(json.dumps({"store": str(store), "ran": report.ran, "skipped": report.skipped,
                          "waited": report.waited, "results": rows_to_json(report.rows)}, indent=2))
        return
    first = report.rows[0].id if report.rows else None
    title = f"{model} on {first.dataset.label} (seed {seed})" if first else str(model)
    print_results(console, title, report.rows)
    console.print(f"ran {len(report.ran)} task(s), reused {len(report.skipped)} from the store"
                  + (f", {len(report.waited)} computed by another run" if report.waited else "") + f": {store}",
                  highlight=False)


def fan_out(model: str, suites: list[str], store: str, options: dict[str, Any], dataset: str | None,
            data_root: Path | None, run: RunOptions, executor: str, jobs: int, ray_address: str | None) -> None:
    """Run the suites as separate jobs on ``executor`` (validated first, like a local run)."""
    from shiftlab.app.evaluate import check_options
    from shiftlab.app.grid import EvalJob, run_grid
    from shiftlab.evaluation import suite_requests
    from shiftlab.evaluation.executors import EXECUTORS, raise_failures

    if executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    check_options(suites, options)
    suite_requests(suites, options)
    grid = [EvalJob(model, (name,), options, dataset, str(data_root) if data_root else None, run.seed, run.limit,
                    run.batch_size, run.device, run.amp, run.channels_last) for name in suites]
    with err_console.status(f"{len(grid)} job(s) on the {executor} executor"):
        outcomes = run_grid(grid, store, executor, jobs, ray_address)
    raise_failures(outcomes, f"evaluation on the {executor} executor")


COMMON = [
    ("model", str, typer.Option(..., help="checkpoint (run directory, weights file with its card, zoo:NAME) or "
                                          "a model by name (torchvision:NAME, timm:NAME; with --dataset)")),
    ("pretrained", str, typer.Option(None, help="weights of a torchvision:/timm: model, e.g. DEFAULT (downloaded "
                                                "once into the library's cache)")),
    ("dataset", str, typer.Option(None, help="dataset to evaluate on (default: the model's training dataset)")),
    ("suite", list[str], typer.Option(["clean"], help="suite to run (repeatable; see `shiftlab list suites`)")),
    ("store", str, typer.Option(DEFAULT_STORE, help=STORE_HELP)),
    ("data_root", Path, typer.Option(None, help="where the dataset's files are")),
    ("download", bool, typer.Option(False, help="download the dataset into --data-root when it is missing "
                                                "(datasets that support it; checksums verified)")),
    ("limit", int, typer.Option(None, help="evaluate on the first N test images")),
    ("seed", int, typer.Option(0, help="base seed of every random draw")),
    ("batch_size", int, typer.Option(256, help="images per forward pass (never changes a number)")),
    ("device", str, typer.Option("auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")),
    ("amp", str, typer.Option(None, help="mixed precision of the forward passes: bf16 (CPU or CUDA) or fp16 (CUDA); "
                                          "stored as a model of its own, attacks stay float32")),
    ("channels_last", bool, typer.Option(False, "--channels-last", help="weights and inputs in channels-last "
                                                                          "layout (the same numbers)")),
    ("as_json", bool, typer.Option(False, "--json", help="print results as JSON")),
    ("executor", str, typer.Option("local", help="where the suites run: local (this process), processes (--jobs "
                                                 "local workers) or ray (a Ray cluster; one job per suite)")),
    ("jobs", int, typer.Option(1, help="workers of the processes or ray executor")),
    ("ray_address", str, typer.Option(None, help="Ray cluster to use (auto, ray://host:port); default: start a "
                                                 "local Ray with --jobs workers")),
]


def build_signature() -> None:
    """Give ``evaluate`` one CLI option per suite flag (Typer reads ``__signature__``)."""
    params, annotations = [], {}
    for name, kind, default in COMMON:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind))
        annotations[name] = kind
    for flag in all_flags().values():
        kind = list[str] if flag.repeatable else str
        option = typer.Option(None, flag.cli, help=flag.help, metavar=flag.metavar)
        params.append(inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
        annotations[flag.name] = kind
    evaluate.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    evaluate.__annotations__ = {**annotations, "return": None}



build_signature()
command()(evaluate)
