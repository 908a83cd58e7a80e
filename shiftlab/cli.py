"""The shiftlab command line: one Typer app with Rich output.

User mistakes (unknown names, missing files, bad values) print one line on stderr and exit 2;
Ctrl-C keeps every finished task in the store and exits 130 with a note on how to resume.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from shiftlab.allocator import keep_freed_memory
from shiftlab.errors import UserError

if TYPE_CHECKING:  # the CLI imports torch-heavy modules lazily, inside the commands
    from shiftlab.evaluate import SuiteOptions
    from shiftlab.zoo import ZooModel
    from shiftlab.zoo.checks import Check
    from shiftlab.zoo.evaluation import ZooRow

app = typer.Typer(
    name="shiftlab",
    help="How does my image classifier behave under distribution shift, and which recipe makes it better?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
DEFAULT_STORE = Path("results/shiftlab.db")
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


INTERRUPTED = "interrupted: every finished task is kept; rerun the same command to resume"


def guarded(fn: F) -> F:
    """Turn user errors into one line + exit 2 and Ctrl-C into a resume hint + exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            err_console.print(INTERRUPTED)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


zoo_app = typer.Typer(help="shiftlab's own Fashion-MNIST models, one per training recipe", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")


def command(*args: Any, group: typer.Typer = app, **kwargs: Any) -> Callable[[F], F]:
    """``group.command`` (the main app by default) with ``guarded`` applied: use it for every subcommand."""

    def decorator(fn: F) -> F:
        return group.command(*args, **kwargs)(guarded(fn))

    return decorator


def parse_list(text: str | None, kind: Callable[[str], Any] = str, flag: str = "") -> tuple[Any, ...] | None:
    """'a,b,c' -> (a, b, c) converted with ``kind``; None stays None."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        return tuple(kind(t) for t in items)
    except ValueError:
        raise UserError(f"{flag} expects a comma-separated list of {getattr(kind, '__name__', 'values')}, got {text!r}") from None


def parse_eps(text: str) -> float:
    """A budget written as a number or a fraction such as 8/255."""
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    return float(text)


def parse_kv(items: list[str] | None, flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items or []:
        if "=" not in item:
            raise UserError(f"{flag} expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out.append((k.strip(), v.strip()))
    return tuple(out)


class RichEvalProgress:
    """Suite progress as a Rich bar (images processed per task)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def start(self, label: str, total: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(label or "evaluating", total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def finish(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None


class RichTrainProgress:
    """Training progress: one bar per epoch with running loss and accuracy."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.loss = 0.0
        self.acc = 0.0

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.loss, self.acc = 0.0, 0.0
        self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, stats="")

    def step(self, loss: float, accuracy: float) -> None:
        self.loss = 0.9 * self.loss + 0.1 * loss if self.loss else loss
        self.acc = 0.9 * self.acc + 0.1 * accuracy if self.acc else accuracy
        self.progress.update(self.task, advance=1, stats=f"loss {self.loss:.3f} acc {self.acc:.3f}")

    def epoch_end(self, row: dict[str, float]) -> None:
        self.progress.remove_task(self.task)
        console.print(
            f"epoch {int(row['epoch'])}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f} | "
            f"val acc {row['val_accuracy']:.4f} | {row['seconds']:.1f}s"
        )


def make_progress(*extra: Any) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra,
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    )


@command()
def train(
    model: str = typer.Option("small-cnn", help="architecture (see `shiftlab list models`)"),
    dataset: str = typer.Option("fashion-mnist", help="dataset (see `shiftlab list datasets`)"),
    recipe: str = typer.Option("erm", help="training recipe (see `shiftlab list recipes`)"),
    recipe_arg: list[str] = typer.Option(None, "--recipe-arg", help="recipe hyper-parameter as key=value (repeatable)"),
    epochs: int = typer.Option(3, min=1),
    batch_size: int = typer.Option(128, min=1),
    optimizer: str = typer.Option("sgd", help="sgd or adamw"),
    lr: float = typer.Option(None, help="learning rate (default 0.1 for sgd, 2e-3 for adamw)"),
    weight_decay: float = typer.Option(5e-4),
    schedule: str = typer.Option("onecycle", help="onecycle, cosine or constant"),
    label_smoothing: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="run directory (default runs/<model>-<recipe>)"),
    data_root: Path = typer.Option(None, help="where the dataset's files are"),
    train_limit: int = typer.Option(None, help="train on the first N training images only"),
    device: str = typer.Option("cpu"),
    resume: bool = typer.Option(False, help="continue the interrupted run in --out"),
    ema: float = typer.Option(None, help="EMA decay of the weights (e.g. 0.999); the average is saved"),
    select: str = typer.Option(None, help="keep the best epoch by validation accuracy: clean, corruption or adversarial"),
) -> None:
    """Train a model with a registered recipe; a checkpoint every epoch, --resume continues."""
    from shiftlab.train import TrainConfig
    from shiftlab.train import train as run_train

    config = TrainConfig(
        model=model, dataset=dataset, recipe=recipe, recipe_args=parse_kv(recipe_arg, "--recipe-arg"),
        epochs=epochs, batch_size=batch_size, optimizer=optimizer,  # type: ignore[arg-type]
        lr=lr, weight_decay=weight_decay, schedule=schedule,  # type: ignore[arg-type]
        label_smoothing=label_smoothing, seed=seed, out=str(out or Path("runs") / f"{model.replace(':', '-')}-{recipe}"),
        device=device, data_root=str(data_root) if data_root else None, train_limit=train_limit,
        ema=ema, select=select,
    )
    with make_progress(TextColumn("{task.fields[stats]}")) as progress:
        result = run_train(config, RichTrainProgress(progress), resume=resume)
    t = result.card.training
    console.print(
        f"[green]trained[/] {config.model} ({config.recipe}) on {config.dataset}: test accuracy "
        f"{t['test_accuracy']:.4f}, {t['train_seconds']:.0f}s training; checkpoint {result.checkpoint}"
    )


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return "n/a" if v != v else f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"


def metrics_table(rows: list[Any], title: str) -> Table:
    """One row per task, one column per plain (slash-free) metric."""
    table = Table(title=title)
    names: list[str] = []
    for row in rows:
        for m in row.metrics:
            if m not in names and m != "seconds":
                names.append(m)
    shown = [m for m in names if "/" not in m][:8] or names[:8]
    table.add_column("task")
    for m in shown:
        table.add_column(m, justify="right")
    for row in rows:
        table.add_row(row.id.task_key, *(_fmt(row.metrics.get(m)) for m in shown))
    return table


def summary_table(row: Any, title: str) -> Table:
    """A suite summary's ``group/item`` metrics pivoted into a grid (the longer side down)."""
    groups: dict[str, dict[str, float]] = {}
    plain: dict[str, float] = {}
    for name, value in row.metrics.items():
        if name == "seconds":
            continue
        if "/" in name:
            group, item = name.split("/", 1)
            groups.setdefault(group, {})[item] = value
        else:
            plain[name] = value
    items = list(dict.fromkeys(i for g in groups.values() for i in g))
    caption = "  ".join(f"{k} {_fmt(v)}" for k, v in plain.items()) or None
    table = Table(title=f"{title}: {row.id.task_key}", caption=caption)
    groups_down = len(items) <= len(groups)
    across, down = (items, list(groups)) if groups_down else (list(groups), items)
    table.add_column("")
    for col in across:
        table.add_column(col, justify="right")
    for key in down:
        cells = [groups[key].get(c) if groups_down else groups[c].get(key) for c in across]
        table.add_row(key, *(_fmt(v) for v in cells))
    return table


def print_results(out: Console, rows: list[Any], title: str, max_rows: int = 15) -> None:
    """Task rows as one table (when few), then each suite summary as a pivoted grid."""
    tasks = [r for r in rows if not r.id.task_key.endswith("/summary")]
    summaries = [r for r in rows if r.id.task_key.endswith("/summary")]
    if tasks and (len(tasks) <= max_rows or not summaries):
        out.print(metrics_table(tasks, title))
    elif tasks:
        out.print(f"{title}: {len(tasks)} tasks in the store (all of them with --json); summary:")
    for row in summaries:
        out.print(summary_table(row, title))


def rows_to_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "task": r.id.task_key, "suite": r.suite, "dataset": r.id.dataset, "seed": r.id.seed,
            "model_fingerprint": r.id.fingerprint, "params": r.params,
            "metrics": {k: (None if v != v else v) for k, v in r.metrics.items()},
            "shiftlab_version": r.shiftlab_version,
        }
        for r in rows
    ]


@command()
def evaluate(
    model: Path = typer.Option(..., help="checkpoint directory or weights file (with its JSON card)"),
    dataset: str = typer.Option(None, help="dataset to evaluate on (default: the model's training dataset)"),
    suite: list[str] = typer.Option(["clean"], help="suite to run (repeatable; see `shiftlab list suites`)"),
    store: Path = typer.Option(DEFAULT_STORE, help="SQLite results store"),
    data_root: Path = typer.Option(None),
    limit: int = typer.Option(None, help="evaluate on the first N test images"),
    seed: int = typer.Option(0),
    batch_size: int = typer.Option(256, min=1),
    device: str = typer.Option("cpu"),
    corruptions: str = typer.Option(None, help="comma-separated corruption names"),
    severities: str = typer.Option(None, help="comma-separated severities, e.g. 1,3,5"),
    params: str = typer.Option(None, help="corruption parameter table: cifar, tiny or imagenet"),
    baseline: Path = typer.Option(None, help="checkpoint that normalises mCE"),
    norm: str = typer.Option("linf", help="threat model norm: linf or l2"),
    eps: str = typer.Option(None, help="comma-separated budgets, e.g. 0.05,0.1 or 8/255"),
    attack: list[str] = typer.Option(None, help="attack name (repeatable)"),
    ood_set: list[str] = typer.Option(None, help="out-of-distribution dataset (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print results as JSON"),
) -> None:
    """Evaluate a checkpoint on one or more suites; results go to the store, finished tasks are never redone."""
    from shiftlab.evaluate import SuiteOptions, make_context, run_suites
    from shiftlab.store import Store

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be a positive number of images, got {limit}")
    options = SuiteOptions(
        seed=seed, limit=limit, batch_size=batch_size,
        corruptions=parse_list(corruptions, str, "--corruptions"),
        severities=parse_list(severities, int, "--severities"),
        params=params, baseline=baseline, norm=norm,
        eps=parse_list(eps, parse_eps, "--eps") or (),
        attacks=tuple(attack) if attack else None,
        ood_sets=tuple(ood_set) if ood_set else None,
    )
    from shiftlab.evaluate import SUITES

    for name in suite:
        SUITES.get(name)  # unknown suite: one line, before loading anything
    with Store(store) as db, make_progress() as progress:
        ctx = make_context(model, dataset, db, options, device=device, data_root=data_root,
                           progress=RichEvalProgress(progress))
        report = run_suites(ctx, list(suite))
    if as_json:
        print(json.dumps({"store": str(store), "ran": report.ran, "skipped": report.skipped,
                          "results": rows_to_json(report.rows)}, indent=2))
        return
    print_results(console, report.rows, f"{ctx.card.name} on {ctx.dataset_key} (seed {seed})")
    console.print(f"ran {len(report.ran)} task(s), reused {len(report.skipped)} from the store: {store}")


def open_existing_store(store: Path) -> Any:
    """Open a results store that must already exist (reports never create one)."""
    from shiftlab.store import Store

    if not store.exists():
        raise UserError(f"no results store at {store}; run `shiftlab evaluate` first or pass --store")
    return Store(store)


@command()
def report(
    store: Path = typer.Option(DEFAULT_STORE, help="SQLite results store"),
    out: Path = typer.Option(Path("report"), help="directory the report is written to"),
    fmt: str = typer.Option("html", "--format", help="html (offline static site), md or json (leaderboard)"),
    sort: str = typer.Option(None, help="leaderboard column to sort by (default clean_acc)"),
) -> None:
    """Write the robustness report (leaderboard, robustness cards, comparison) from the store only."""
    from shiftlab.report import write_report

    with open_existing_store(store) as db:
        path = write_report(db, out, fmt, sort)
    console.print(f"report written: {path}")


@command()
def leaderboard(
    store: Path = typer.Option(DEFAULT_STORE, help="SQLite results store"),
    sort: str = typer.Option(None, help="column key to sort by (default clean_acc)"),
) -> None:
    """Print the leaderboard of every model in the store."""
    from shiftlab.report import load_leaderboard
    from shiftlab.report.exports import rich_table

    with open_existing_store(store) as db:
        board = load_leaderboard(db, sort)
    console.print(rich_table(board, f"shiftlab leaderboard ({store})"))
    if not board.evaluations:
        console.print("the store holds no evaluated model yet")


@command("list")
def list_registry(
    family: str = typer.Argument(..., help="models, datasets, suites, recipes, shifts, attacks, metrics, detectors"),
    pattern: str = typer.Option(None, "--filter", help="shell pattern, e.g. '*blur*'"),
) -> None:
    """List what is registered in one family."""
    from shiftlab.registries import all_registries

    registries = all_registries()
    if family not in registries:
        raise UserError(f"unknown family {family!r}; use one of {', '.join(registries)}")
    reg = registries[family]
    table = Table(title=family)
    table.add_column("name")
    table.add_column("description")
    for name in reg.names(pattern):
        meta = reg.meta(name)
        text = (getattr(meta, "description", "") or getattr(reg.get(name), "description", "")
                or getattr(meta, "family", "") or "")
        paper = getattr(meta, "paper", "")
        table.add_row(name, escape(f"{text}{' — ' + paper if paper else ''}"))
    console.print(table)


@command()
def corrupt(
    dataset: str = typer.Option(..., help="dataset to corrupt (see `shiftlab list datasets`)"),
    split: str = typer.Option("test", help="train, val or test"),
    out: Path = typer.Option(..., help="directory for <corruption>.npy + labels.npy (CIFAR-10-C layout)"),
    data_root: Path = typer.Option(None, help="where the dataset's files are"),
    limit: int = typer.Option(None, help="only the first N images"),
    corruptions: str = typer.Option(None, help="comma-separated corruption names (default: all 19)"),
    severities: str = typer.Option(None, help="comma-separated severities (default: 1,2,3,4,5)"),
    seed: int = typer.Option(0),
    params: str = typer.Option(None, help="corruption parameter table: cifar, tiny or imagenet (default: by size)"),
    batch_size: int = typer.Option(256, min=1),
) -> None:
    """Write a corrupted copy of a dataset split in the CIFAR-10-C layout (read back with `corrupted-files`)."""
    from shiftlab.data import load_dataset
    from shiftlab.data.corrupted_files import export_corrupted
    from shiftlab.shifts import SEVERITIES, SHIFTS, resolve_table

    names = list(parse_list(corruptions, str, "--corruptions") or SHIFTS.names())
    for name in names:
        SHIFTS.entry(name)
    sevs = list(parse_list(severities, int, "--severities") or SEVERITIES)
    if not sevs or any(s not in SEVERITIES for s in sevs):
        raise UserError(f"--severities must be values in 1..5, got {severities!r}")
    resolve_table(params, 1, 1)  # validates the name
    ds = load_dataset(dataset, split, root=data_root, limit=limit)
    written = export_corrupted(ds, out, names, sevs, seed, params, batch_size, source=f"{dataset}:{split}")
    console.print(f"wrote {len(written)} corruption file(s) × {len(sevs)} severities of {len(ds)} images to {out}")


@command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="where the demo writes its model, store and report"),
    limit: int = typer.Option(200, min=1, help="evaluate every model on the first N test images"),
) -> None:
    """Train a quick small-cnn, run every suite on it and on the zoo, write the report (the README's `make demo`)."""
    from shiftlab.demo import run_demo

    run_demo(out, console, make_progress, RichTrainProgress, RichEvalProgress, limit)


ZOO_DIR_OPTION = typer.Option(None, "--zoo", help="zoo directory (default: the repository's zoo/ or $SHIFTLAB_ZOO)")


@command("train", group=zoo_app)
def zoo_train(
    only: str = typer.Option(None, help="comma-separated zoo names (default: every entry)"),
    zoo: Path = ZOO_DIR_OPTION,
    runs: Path = typer.Option(Path("runs"), help="training runs go to RUNS/zoo/<name> (resumable)"),
    jobs: int = typer.Option(1, min=1, help="train this many entries at once, one thread each"),
    threads: int = typer.Option(None, min=1, help="torch CPU threads for this process"),
    data_root: Path = typer.Option(None, help="where Fashion-MNIST's files are"),
) -> None:
    """(Re)train zoo entries with their stored configuration and install their checkpoints."""
    import torch

    from shiftlab.zoo import ZOO, default_zoo_dir
    from shiftlab.zoo.training import balance, train_entry
    from shiftlab.zoo.workers import run_workers

    names = list(parse_list(only, str, "--only") or ZOO.names())
    entries = [ZOO.get(n) for n in names]
    zoo_dir = zoo or default_zoo_dir()
    if jobs > 1:  # workers print one line per finished entry; their progress bars stay in their logs
        base = ["zoo", "train", "--zoo", str(zoo_dir), "--runs", str(runs),
                *(["--data-root", str(data_root)] if data_root else [])]
        with err_console.status(f"training {len(entries)} zoo entries in {jobs} processes"):
            run_workers([[*base, "--only", ",".join(e.name for e in g)] for g in balance(entries, jobs)],
                        "zoo training", show_output=True)
        return
    if threads:
        torch.set_num_threads(threads)
    for entry in entries:
        with make_progress(TextColumn("{task.fields[stats]}")) as progress:
            result = train_entry(entry, zoo_dir, runs, RichTrainProgress(progress), str(data_root) if data_root else None)
        t = result.card.training
        console.print(f"[green]zoo[/] {entry.name}: test accuracy {t['test_accuracy']:.4f}, "
                      f"{t['train_seconds']:.0f}s training -> {zoo_dir / entry.name}")


def zoo_headline_table(rows: list[Any], title: str) -> Table:
    """The recipe × metric table of the zoo (percentages; "—" where not evaluated)."""
    from shiftlab.zoo.evaluation import HEADLINE

    table = Table(title=title)
    for col in ("model", "recipe", "train s", *HEADLINE.values()):
        table.add_column(col, justify="left" if col in ("model", "recipe") else "right")
    for r in rows:
        cells = [_fmt_pct(r.metrics[k]) for k in HEADLINE]
        table.add_row(r.name, r.recipe, "—" if r.train_seconds is None else f"{r.train_seconds:.0f}", *cells)
    return table


def run_zoo_evaluation(models: list[ZooModel], store: Path, options: SuiteOptions, jobs: int = 1,
                       zoo: Path | None = None, eval_progress: Callable[[Progress], Any] = RichEvalProgress,
                       ) -> tuple[list[ZooRow], list[Check]]:
    """Evaluate zoo models into ``store`` and return (table rows, literature checks).

    With ``jobs`` > 1 single-thread worker processes evaluate first; the in-process pass that follows
    (with progress bars) then only finds what they left undone, e.g. after a worker failed.
    """
    from shiftlab.store import Store
    from shiftlab.zoo.checks import run_checks
    from shiftlab.zoo.evaluation import evaluate_zoo, evaluate_zoo_in_processes, zoo_table

    if jobs > 1:
        with err_console.status(f"evaluating {len(models)} zoo models in {jobs} processes"):
            evaluate_zoo_in_processes(models, store, options, jobs, zoo)
    with Store(store) as db:
        with make_progress() as progress:
            overall = progress.add_task("zoo models", total=len(models))
            evaluate_zoo(models, db, options, progress=lambda: eval_progress(progress),
                         on_model=lambda zm, s: progress.advance(overall))
        rows = zoo_table(models, db, options)
    pgd = next((zm.card.training for zm in models if zm.name == "pgd-at"), None)
    return rows, run_checks(rows, pgd)


def print_checks(out: Console, checks: list[Check]) -> None:
    """One line per literature check of the zoo: verdict, claim, the numbers behind it."""
    for c in checks:
        mark = {True: "[green]holds[/]", False: "[red]does not hold[/]", None: "[yellow]undecided[/]"}[c.holds]
        out.print(f"{mark}  {escape(c.claim)}: {escape(c.detail)}")


def _fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


@command("list", group=zoo_app)
def zoo_list(zoo: Path = ZOO_DIR_OPTION) -> None:
    """Every zoo entry: its recipe, whether its checkpoint is here, and the headline metrics on its card."""
    from shiftlab.zoo import ZOO, default_zoo_dir, installed
    from shiftlab.zoo.evaluation import HEADLINE, ZooRow

    zoo_dir = zoo or default_zoo_dir()
    have = {zm.name: zm for zm in installed(zoo_dir)}
    rows = []
    for name in ZOO.names():
        entry, zm = ZOO.get(name), have.get(name)
        metrics = zm.card.metrics if zm else {}
        rows.append(ZooRow(name, entry.recipe + "".join(f" {k}={v}" for k, v in entry.recipe_args.items()),
                           zm.card.training.get("train_seconds") if zm else None,
                           {k: metrics.get(k) for k in HEADLINE}))
    protocol = next((zm.card.metrics.get("protocol") for zm in have.values() if zm.card.metrics), None)
    console.print(zoo_headline_table(rows, f"shiftlab zoo ({len(have)}/{len(ZOO)} checkpoints in {zoo_dir})"))
    if protocol:
        console.print(f"metrics from the cards, measured on {protocol['dataset']} (seed {protocol['seed']}); "
                      "`shiftlab zoo show NAME` for one model")


@command("show", group=zoo_app)
def zoo_show(name: str = typer.Argument(..., help="zoo entry (see `shiftlab zoo list`)"), zoo: Path = ZOO_DIR_OPTION) -> None:
    """One zoo model's card: recipe, training configuration and history, headline metrics, fingerprint."""
    from shiftlab.zoo import resolve

    zm = resolve(name, zoo)
    card, t = zm.card, zm.card.training
    console.print(f"[bold]{name}[/] — {card.name}, {card.config.arch} on {card.dataset}; checkpoint {zm.path}")
    console.print(f"recipe: {card.recipe.get('name')} {json.dumps(card.recipe.get('args', {}))}")
    cfg = t.get("config", {})
    console.print(f"training: {t.get('epochs_done')} epochs, {cfg.get('optimizer')} lr {cfg.get('lr') or 'default'}, "
                  f"{cfg.get('schedule')}, batch {cfg.get('batch_size')}, seed {cfg.get('seed')}; "
                  f"{t.get('train_seconds', 0):.0f}s; test accuracy {t.get('test_accuracy', float('nan')):.4f}")
    if "selection" in t:
        sel = t["selection"]
        console.print(f"robust early stopping: kept epoch {sel['epoch']} by {sel['metric']} (score {sel['score']:.4f})")
    history = Table(title="history")
    keys = [k for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "select_score", "seconds")
            if any(k in row for row in t.get("history", []))]
    for k in keys:
        history.add_column(k, justify="right")
    for row in t.get("history", []):
        history.add_row(*[f"{row[k]:.0f}" if k in ("epoch", "seconds") and k in row else _fmt(row.get(k)) for k in keys])
    console.print(history)
    if card.metrics:
        metrics = {k: v for k, v in card.metrics.items() if k != "protocol"}
        console.print("headline metrics: " + ", ".join(f"{k} {_fmt_pct(v)}%" for k, v in metrics.items()))
        console.print(f"protocol: {json.dumps(card.metrics.get('protocol'))}")
    console.print(f"fingerprint {card.fingerprint}")


@command("evaluate", group=zoo_app)
def zoo_evaluate(
    only: str = typer.Option(None, help="comma-separated zoo names (default: every installed entry)"),
    zoo: Path = ZOO_DIR_OPTION,
    store: Path = typer.Option(DEFAULT_STORE, help="SQLite results store"),
    limit: int = typer.Option(1000, help="evaluate on the first N test images (0: the whole test set)"),
    seed: int = typer.Option(0),
    update_cards: bool = typer.Option(False, help="write the headline metrics (and protocol) into the zoo cards"),
    jobs: int = typer.Option(1, min=1, help="evaluate in this many processes, one thread each"),
    as_json: bool = typer.Option(False, "--json", help="print the table and the checks as JSON"),
) -> None:
    """Run clean, corruptions, adversarial (APGD-CE Linf 0.1), calibration and OOD on every zoo model; resumable."""
    from dataclasses import asdict

    from shiftlab.zoo import installed
    from shiftlab.zoo.evaluation import update_cards as write_cards
    from shiftlab.zoo.evaluation import zoo_options

    if limit < 0:
        raise UserError(f"--limit must be a number of images (0 for all), got {limit}")
    models = installed(zoo, list(parse_list(only, str, "--only") or ()) or None)
    if not models:
        raise UserError(f"no zoo checkpoints in {zoo or 'the zoo directory'}; run `shiftlab zoo train` first")
    options = zoo_options(limit or None, seed)
    rows, checks = run_zoo_evaluation(models, store, options, jobs, zoo)
    if update_cards:
        write_cards(models, rows, options)
    if as_json:
        print(json.dumps({"store": str(store), "rows": [asdict(r) for r in rows],
                          "checks": [asdict(c) for c in checks]}, indent=2))
        return
    console.print(zoo_headline_table(rows, f"zoo on fashion-mnist{f'[:{limit}]' if limit else ''} (seed {seed})"))
    print_checks(console, checks)
    console.print(f"results store: {store}; `shiftlab report --store {store}` for the HTML leaderboard")


def main() -> None:
    """Entry point (the ``shiftlab`` console script)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # large CPU tensors reuse freed heap memory instead of fresh, page-faulting mmaps
    try:
        code = app(standalone_mode=False)
    except UserError as exc:  # raised outside a command body
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.TyperException as exc:  # bad flag or value: one line, not a usage box
        message = " ".join(exc.format_message().split())
        err_console.print(f"[bold red]error:[/] {message} (see --help)", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(INTERRUPTED)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
