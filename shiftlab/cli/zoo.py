"""``shiftlab zoo train|list|show|evaluate``: shiftlab's own models, one per training recipe."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from shiftlab.cli.common import command, console, zoo_app
from shiftlab.cli.evaluate import DEFAULT_STORE, STORE_HELP
from shiftlab.cli.progress import RichPresenter, pct, zoo_rows
from shiftlab.cli.render import print_table
from shiftlab.core.errors import UserError
from shiftlab.evaluation.flags import items

ZOO_DIR_OPTION = typer.Option(None, "--zoo", help="zoo directory (default: shiftlab's package data or $SHIFTLAB_ZOO)")


def names(only: str | None) -> list[str] | None:
    return items(only, "--only") if only else None


@command("train", group=zoo_app)
def zoo_train(
    only: str = typer.Option(None, help="comma-separated zoo names (default: every entry)"),
    zoo: Path = ZOO_DIR_OPTION,
    runs: Path = typer.Option(Path("runs"), help="training runs go to RUNS/zoo/<name> (resumable)"),
    jobs: int = typer.Option(1, min=1, help="train this many entries at once, one thread each"),
    data_root: Path = typer.Option(None, help="where Fashion-MNIST's files are"),
) -> None:
    """(Re)train zoo entries with their stored configuration and install their checkpoints."""
    from shiftlab.app.zoo import ZOO
    from shiftlab.app.zoo.training import train_zoo
    from shiftlab.models import zoo_dir

    entries = [ZOO.get(n) for n in (names(only) or ZOO.names())]
    train_zoo(entries, zoo or zoo_dir(), runs, jobs=jobs, data_root=str(data_root) if data_root else None,
              presenter=RichPresenter())


@command("list", group=zoo_app)
def zoo_list(zoo: Path = ZOO_DIR_OPTION) -> None:
    """Every zoo entry: its recipe, whether its checkpoint is here, and the headline metrics on its card."""
    from shiftlab.app.zoo import ZOO, installed
    from shiftlab.app.zoo.table import HEADLINE, ZooRow
    from shiftlab.models import zoo_dir

    directory = zoo or zoo_dir()
    have = {zm.name: zm for zm in installed(directory)}
    rows = []
    for name in ZOO.names():
        entry, zm = ZOO.get(name), have.get(name)
        metrics = zm.card.metrics if zm else {}
        rows.append(ZooRow(name, entry.recipe + "".join(f" {k}={v}" for k, v in entry.recipe_args.items()),
                           zm.card.training.get("train_seconds") if zm else None,
                           {k: metrics.get(k) for k in HEADLINE}))
    protocol = next((zm.card.metrics.get("protocol") for zm in have.values() if zm.card.metrics), None)
    headers, cells = zoo_rows(rows)
    print_table(console, f"shiftlab zoo ({len(have)}/{len(ZOO)} checkpoints in {directory})", headers, cells,
                numeric=[False, False, *([True] * (len(headers) - 2))])
    if protocol:
        console.print(f"metrics (%) from the cards, measured on {protocol['dataset']} (seed {protocol['seed']}); "
                      "`shiftlab zoo show NAME` for one model", highlight=False)


@command("show", group=zoo_app)
def zoo_show(name: str = typer.Argument(..., help="zoo entry (see `shiftlab zoo list`)"), zoo: Path = ZOO_DIR_OPTION
             ) -> None:
    """One zoo model's card: recipe, training configuration and history, headline metrics, fingerprint."""
    from shiftlab.app.zoo import resolve

    zm = resolve(name, zoo)
    card, t = zm.card, zm.card.training
    console.print(f"[bold]{name}[/] — {card.name}, {card.config.arch} on {card.dataset}; checkpoint {zm.path}",
                  highlight=False)
    console.print(f"recipe: {card.recipe.get('name')} {json.dumps(card.recipe.get('args', {}))}", highlight=False)
    cfg = t.get("config", {})
    console.print(f"training: {t.get('epochs_done')} epochs, {cfg.get('optimizer')} lr {cfg.get('lr') or 'default'}, "
                  f"{cfg.get('schedule')}, batch {cfg.get('batch_size')}, seed {cfg.get('seed')}; "
                  f"{t.get('train_seconds', 0):.0f}s; test accuracy {100 * t.get('test_accuracy', float('nan')):.2f}%",
                  highlight=False)
    if "selection" in t:
        sel = t["selection"]
        console.print(f"robust early stopping: kept epoch {sel['epoch']} by {sel['metric']} "
                      f"(score {100 * sel['score']:.1f}%)", highlight=False)
    keys = [k for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "select_score", "seconds")
            if any(k in row for row in t.get("history", []))]
    percent = {"train_accuracy", "val_accuracy", "select_score"}

    def cell(k: str, v: float | None) -> str:
        if v is None:
            return ""
        return f"{v:.0f}" if k in ("epoch", "seconds") else pct(v) if k in percent else f"{v:.4f}"

    print_table(console, "history (accuracies in %)", keys, [[cell(k, row.get(k)) for k in keys]
                                                            for row in t.get("history", [])],
                numeric=[True] * len(keys))
    if card.metrics:
        metrics = {k: v for k, v in card.metrics.items() if k != "protocol"}
        console.print("headline metrics: " + ", ".join(f"{k} {pct(v)}%" for k, v in metrics.items()), highlight=False)
        console.print(f"protocol: {json.dumps(card.metrics.get('protocol'))}", highlight=False)
    console.print(f"fingerprint {card.fingerprint}", highlight=False)


@command("evaluate", group=zoo_app)
def zoo_evaluate(
    only: str = typer.Option(None, help="comma-separated zoo names (default: every installed entry)"),
    zoo: Path = ZOO_DIR_OPTION,
    store: str = typer.Option(DEFAULT_STORE, help=STORE_HELP),
    limit: int = typer.Option(1000, help="evaluate on the first N test images (0: the whole test set)"),
    seed: int = typer.Option(0),
    update_cards: bool = typer.Option(False, help="write the headline metrics (and protocol) into the zoo cards"),
    jobs: int = typer.Option(1, min=1, help="evaluate in this many processes, one thread each"),
    executor: str = typer.Option(None, help="processes (default with --jobs > 1) or ray"),
    ray_address: str = typer.Option(None, help="Ray cluster (auto, ray://host:port); default: a local Ray"),
    as_json: bool = typer.Option(False, "--json", help="print the table and the checks as JSON"),
) -> None:
    """Run clean, corruptions, adversarial (APGD-CE L∞ 0.1), calibration and OOD on every zoo model; resumable."""
    from shiftlab.app.zoo import installed
    from shiftlab.app.zoo.checks import run_checks
    from shiftlab.app.zoo.evaluation import evaluate_zoo
    from shiftlab.app.zoo.evaluation import update_cards as write_cards

    if limit < 0:
        raise UserError(f"--limit must be a number of images (0 for all), got {limit}")
    models = installed(zoo, names(only))
    if not models:
        raise UserError(f"no zoo checkpoints in {zoo or 'the zoo directory'}; run `shiftlab zoo train` first")
    presenter = RichPresenter()
    rows, dataset = evaluate_zoo(models, store, limit=limit or None, seed=seed, jobs=jobs, executor=executor,
                                 ray_address=ray_address, presenter=presenter if not as_json else None)
    pgd = next((zm.card.training for zm in models if zm.name == "pgd-at"), None)
    checks = run_checks(rows, pgd)
    if update_cards:
        write_cards(models, rows, dataset, seed)
    if as_json:
        print(json.dumps({"store": str(store), "dataset": dataset.label, "rows": [asdict(r) for r in rows],
                          "checks": [asdict(c) for c in checks]}, indent=2))
        return
    presenter.zoo_table(f"zoo on {dataset.label} (%; seed {seed})", rows)
    presenter.checks(checks)
    console.print(f"results store: {store}; `shiftlab report --store {store}` for the HTML leaderboard",
                  highlight=False)
