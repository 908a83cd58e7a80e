"""The zoo: registry coverage, the checkpoints in the repository, the CLI, and the shared corrupted-image cache."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from shiftlab.cli import app
from shiftlab.evaluate import make_context, run_suites
from shiftlab.evaluate.cache import EvalCache
from shiftlab.models import load_model
from shiftlab.store import Store
from shiftlab.train import RECIPES
from shiftlab.zoo import ZOO, default_zoo_dir, installed
from shiftlab.zoo.checks import run_checks
from shiftlab.zoo.entries import ZOO_EPOCHS
from shiftlab.zoo.evaluation import HEADLINE, ZooRow, zoo_options
from shiftlab.zoo.training import balance, zoo_config

ZOO_DIR = default_zoo_dir()
runner = CliRunner()


def test_every_recipe_has_a_zoo_entry():
    assert set(RECIPES.names()) <= {ZOO.get(n).recipe for n in ZOO.names()}


def test_balance_puts_every_entry_in_exactly_one_group():
    entries = [ZOO.get(n) for n in ZOO.names()]
    groups = balance(entries, 3)
    assert sorted(e.name for g in groups for e in g) == sorted(ZOO.names())
    loads = [sum(e.cost for e in g) for g in groups]
    assert max(loads) - min(loads) <= max(e.cost for e in entries)


# --- the checkpoints committed in zoo/ ---------------------------------------------------------

def test_repository_zoo_is_complete_small_and_self_describing():
    models = installed(ZOO_DIR)
    assert [m.name for m in models] == ZOO.names(), "every zoo entry has its checkpoint in zoo/"
    total = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert total < 30 * 2**20
    for zm in models:
        assert sorted(p.name for p in zm.path.iterdir()) == ["model.json", "model.safetensors"]
        expected = zoo_config(zm.entry, Path("runs")).identity()
        stored = dict(zm.card.training["config"])
        for k in ("out", "device", "data_root", "name"):
            stored.pop(k)
        assert stored == expected, f"{zm.name}: the card's training config is the entry's"
        assert zm.card.training["epochs_done"] == ZOO_EPOCHS
        assert zm.card.training["train_seconds"] > 0
        assert set(HEADLINE) <= set(zm.card.metrics), f"{zm.name}: headline metrics on the card"
        assert zm.card.metrics["protocol"]["dataset"].startswith("fashion-mnist")


def test_zoo_cards_clean_accuracy_is_reproduced(fmnist_test):
    """The card's clean accuracy is recomputed from the weights on the images its protocol names."""
    for zm in installed(ZOO_DIR):
        model, card = load_model(zm.path)  # also checks the weights against the card's fingerprint
        key = card.metrics["protocol"]["dataset"]
        n = int(key.split("[:")[1].rstrip("]")) if "[:" in key else len(fmnist_test)
        x, y = fmnist_test.get_batch(torch.arange(n))
        with torch.inference_mode():
            acc = (model(x).argmax(1) == y).float().mean().item()
        assert acc == pytest.approx(card.metrics["clean_acc"], abs=1e-6), zm.name


# --- the CLI -------------------------------------------------------------------------------------

def one_model_zoo(tmp_path: Path, checkpoint: Path, name: str = "erm") -> Path:
    zoo = tmp_path / "zoo"
    (zoo / name).mkdir(parents=True)
    for f in ("model.safetensors", "model.json"):
        shutil.copyfile(checkpoint / f, zoo / name / f)
    return zoo


def test_zoo_list_and_show(tmp_path, fmnist_checkpoint, monkeypatch):
    from shiftlab import cli

    monkeypatch.setattr(cli.console, "width", 250)  # the table's names, unabbreviated
    zoo = one_model_zoo(tmp_path, fmnist_checkpoint)
    result = runner.invoke(app, ["zoo", "list", "--zoo", str(zoo)])
    assert result.exit_code == 0, result.output
    assert f"1/{len(ZOO)} checkpoints" in result.output
    for name in ZOO.names():
        assert name in result.output
    result = runner.invoke(app, ["zoo", "show", "erm", "--zoo", str(zoo)])
    assert result.exit_code == 0, result.output
    assert "fingerprint" in result.output and "history" in result.output


@pytest.mark.parametrize("args", [["zoo", "show", "no-such-model"], ["zoo", "show", "mixup"],
                                  ["zoo", "evaluate", "--only", "no-such-model"], ["zoo", "evaluate", "--limit", "-3"]])
def test_zoo_mistakes_are_one_line(tmp_path, fmnist_checkpoint, args):
    zoo = one_model_zoo(tmp_path, fmnist_checkpoint)
    result = runner.invoke(app, [*args, "--zoo", str(zoo)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_zoo_evaluate_runs_every_suite_resumes_and_updates_cards(tmp_path, fmnist_checkpoint):
    zoo = one_model_zoo(tmp_path, fmnist_checkpoint)
    store = tmp_path / "s.db"
    args = ["zoo", "evaluate", "--zoo", str(zoo), "--store", str(store), "--limit", "64", "--json"]
    first = runner.invoke(app, [*args, "--update-cards"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    (row,) = out["rows"]
    assert row["name"] == "erm" and all(row["metrics"][k] is not None for k in HEADLINE)
    assert 0.0 <= row["metrics"]["robust_linf_0.1"] <= row["metrics"]["clean_acc"]
    card = json.loads((zoo / "erm" / "model.json").read_text())
    assert card["metrics"]["clean_acc"] == row["metrics"]["clean_acc"]
    assert card["metrics"]["protocol"]["dataset"] == "fashion-mnist[:64]"
    with Store(store) as db:
        n_tasks = len(db.tasks())
        suites = {r.suite for r in db.tasks()}
    assert suites == {"clean", "corruptions", "adversarial", "calibration", "ood"}
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert json.loads(again.output)["rows"] == out["rows"]
    with Store(store) as db:
        assert len(db.tasks()) == n_tasks, "a rerun reuses every stored task"
    # the checks never call a missing comparison a pass
    assert all(c["holds"] is None for c in out["checks"] if "ERM's robust" not in c["claim"])


# --- the shared corrupted-image cache ------------------------------------------------------------

def test_corruption_and_calibration_suites_share_images_and_cache_changes_nothing(tmp_path, fmnist_checkpoint):
    options = replace(zoo_options(96), corruptions=("gaussian_noise", "frost"), severities=(2, 5), batch_size=32)
    results, caches = [], []
    for budget in (2**30, 0):
        cache = EvalCache.create(budget)
        with Store(tmp_path / f"{budget}.db") as db:
            ctx = make_context(fmnist_checkpoint, None, db, options, cache=cache)
            run_suites(ctx, ["corruptions", "calibration"])
            results.append({r.id.task_key: {k: v for k, v in r.metrics.items() if k != "seconds"}
                            for r in db.tasks()})
        caches.append(cache)
    with_cache, without = results
    assert caches[0].logits.hits == 4, "each calibration cell reused the corruptions cell's logits"
    assert caches[1].logits.hits == caches[1].images.hits == 0
    assert with_cache == without
    for name in ("gaussian_noise", "frost"):
        for s in (2, 5):
            assert with_cache[f"corruptions/{name}/{s}"]["accuracy"] == with_cache[f"calibration/{name}/{s}"]["accuracy"]


def test_checks_decide_only_on_present_numbers():
    def row(name, clean, corr, rob, secs=100.0):
        return ZooRow(name, name, secs, {"clean_acc": clean, "corruption_acc": corr, "robust_linf_0.1": rob})

    rows = [row("erm", 0.91, 0.80, 0.0), row("augmix", 0.905, 0.83, 0.0), row("prime", 0.88, 0.84, 0.0),
            row("pgd-at", 0.85, 0.75, 0.70, 600.0), row("fast-at", 0.86, 0.76, 0.68, 150.0)]
    checks = {c.claim.split(" ")[0]: c for c in run_checks(rows, None)}
    assert checks["augmix"].holds is True
    assert checks["prime"].holds is False  # 3 pp clean loss
    assert checks["pixmix"].holds is None  # not in the table
    assert checks["pgd-at"].holds is True
    assert checks["fast-AT"].holds is True
    assert checks["TRADES"].holds is None
    assert checks["robust"].holds is None


def test_demo_zoo_step_evaluates_the_zoo_and_prints_the_checks(tmp_path, fmnist_checkpoint, monkeypatch):
    from rich.console import Console

    from shiftlab.cli import RichEvalProgress, make_progress
    from shiftlab.demo import DEMO_STEPS, DemoRun, zoo_step

    assert zoo_step in DEMO_STEPS
    monkeypatch.setenv("SHIFTLAB_ZOO", str(one_model_zoo(tmp_path, fmnist_checkpoint)))
    console = Console(record=True, width=200)
    run = DemoRun(tmp_path, fmnist_checkpoint, tmp_path / "demo.db", console, make_progress, RichEvalProgress,
                  zoo_options(32))
    zoo_step(run)
    text = console.export_text()
    assert "zoo on fashion-mnist[:32]" in text and "erm" in text
    assert "holds  ERM's robust accuracy is near 0" in text  # "holds" or "does not hold"
    assert "undecided  augmix raises" in text
    with Store(tmp_path / "demo.db") as db:
        assert {r.id.dataset for r in db.tasks()} == {"fashion-mnist[:32]"}


def test_zoo_evaluate_in_two_processes_fills_one_store(tmp_path):
    zoo = tmp_path / "zoo"
    for name in ("erm", "pgd-at"):
        shutil.copytree(ZOO_DIR / name, zoo / name)
    store = tmp_path / "s.db"
    result = runner.invoke(app, ["zoo", "evaluate", "--zoo", str(zoo), "--store", str(store), "--limit", "32",
                                 "--jobs", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r["metrics"] for r in json.loads(result.output)["rows"]}
    assert set(rows) == {"erm", "pgd-at"} and all(v is not None for m in rows.values() for v in m.values())
    assert rows["pgd-at"]["robust_linf_0.1"] > rows["erm"]["robust_linf_0.1"]


def test_run_workers_reports_the_failing_worker_line(tmp_path):
    from shiftlab.errors import UserError
    from shiftlab.zoo.workers import run_workers

    empty = tmp_path / "empty"
    empty.mkdir()
    run_workers([["zoo", "list", "--zoo", str(empty)]], "zoo listing")  # exit 0: nothing raised
    with pytest.raises(UserError, match=r"zoo evaluation failed in 1 of 2 worker\(s\).*no zoo checkpoints"):
        run_workers([["zoo", "list", "--zoo", str(empty)], ["zoo", "evaluate", "--zoo", str(empty)]],
                    "zoo evaluation")
