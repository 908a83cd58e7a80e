"""The zoo: registry coverage, the checkpoints shipped as package data, the CLI, the shared
corrupted-image cache, the executors, and the demo's zoo step."""

from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from shiftlab.app.evaluate import evaluate_model
from shiftlab.app.presenter import SilentPresenter
from shiftlab.app.zoo import ZOO, ZOO_EPOCHS, installed
from shiftlab.app.zoo.checks import run_checks
from shiftlab.app.zoo.table import HEADLINE, ZOO_OPTIONS, ZooRow
from shiftlab.app.zoo.training import balance, zoo_config
from shiftlab.cli import app
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CalibrationCell, CorruptionCell
from shiftlab.evaluation.cache import EvalCache
from shiftlab.evaluation.executors import LocalExecutor, ProcessExecutor, raise_failures
from shiftlab.models import load_model, zoo_dir
from shiftlab.store import Store
from shiftlab.training import RECIPES

ZOO_DIR = zoo_dir()
runner = CliRunner()


def test_every_recipe_has_a_zoo_entry():
    assert set(RECIPES.names()) <= {ZOO.get(n).recipe for n in ZOO.names()}


def test_balance_puts_every_entry_in_exactly_one_group():
    entries = [ZOO.get(n) for n in ZOO.names()]
    groups = balance(entries, 3)
    assert sorted(e.name for g in groups for e in g) == sorted(ZOO.names())
    loads = [sum(e.cost for e in g) for g in groups]
    assert max(loads) - min(loads) <= max(e.cost for e in entries)


# --- the checkpoints shipped as package data ----------------------------------------------------

def test_shipped_zoo_is_complete_small_and_self_describing():
    models = installed(ZOO_DIR)
    missing = [name for name in ZOO.names() if name not in {m.name for m in models}]
    assert missing == [], "every zoo entry has its checkpoint in the package data"
    total = sum(f.stat().st_size for f in ZOO_DIR.rglob("*") if f.is_file())
    assert total < 1.7 * 2**20 * len(models)  # each card and its small model stay under 1.7 MiB (36 MiB for 24)
    for zm in models:
        assert sorted(p.name for p in zm.path.iterdir()) == ["model.json", "model.safetensors"]
        expected = zoo_config(zm.entry, Path("runs")).identity()
        stored = dict(zm.card.training["config"])
        for k in ("out", "device", "data_root", "name", "download"):  # where and how, not what was trained
            stored.pop(k, None)
        assert stored == expected, f"{zm.name}: the card's training config is the entry's"
        assert zm.card.training["epochs_done"] == ZOO_EPOCHS
        assert zm.card.training["train_seconds"] > 0
        assert set(HEADLINE) <= set(zm.card.metrics), f"{zm.name}: headline metrics on the card"
        assert zm.card.metrics["protocol"]["dataset"].startswith("fashion-mnist")


def test_zoo_cards_clean_accuracy_is_reproduced(fmnist_test):
    """The card's clean accuracy is recomputed from the weights on the images its protocol names."""
    for zm in installed(ZOO_DIR):
        model, card = load_model(f"zoo:{zm.name}")  # also checks the weights against the card's fingerprint
        label = card.metrics["protocol"]["dataset"]
        n = int(label.split("[:")[1].rstrip("]")) if "[:" in label else len(fmnist_test)
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


def test_zoo_list_at_80_columns_never_cuts_a_name(monkeypatch):
    """Issue 13, defect 4: at 80 columns names and headers are never cut; percentages, not fractions."""
    from shiftlab.cli import common, progress, zoo

    narrow = common.Console(width=80, record=True, force_terminal=False)
    for module in (common, progress, zoo):
        monkeypatch.setattr(module, "console", narrow)
    result = runner.invoke(app, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    text = narrow.export_text()
    assert "…" not in text
    words = set(re.findall(r"[\w.-]+", text))
    for name in ZOO.names():
        assert name in words, name
    assert {"manifold-mixup", "interpolated-at", "gaussian-noise", "advprop"} <= words
    assert "91.8" in words and not any(w.startswith("0.9") for w in words)  # accuracies are percentages


def test_zoo_list_and_show(tmp_path, fmnist_checkpoint, monkeypatch):
    from shiftlab.cli import common, progress, zoo

    wide = common.Console(width=250, record=True)
    for module in (common, progress, zoo):
        monkeypatch.setattr(module, "console", wide)
    directory = one_model_zoo(tmp_path, fmnist_checkpoint)
    result = runner.invoke(app, ["zoo", "list", "--zoo", str(directory)])
    assert result.exit_code == 0, result.output
    text = wide.export_text(clear=True)
    assert f"1/{len(ZOO)} checkpoints" in text
    for name in ZOO.names():
        assert name in text
    result = runner.invoke(app, ["zoo", "show", "erm", "--zoo", str(directory)])
    assert result.exit_code == 0, result.output
    text = wide.export_text()
    assert "fingerprint" in text and "history" in text


@pytest.mark.parametrize("args", [["zoo", "show", "no-such-model"], ["zoo", "show", "mixup"],
                                  ["zoo", "evaluate", "--only", "no-such-model"], ["zoo", "evaluate", "--limit", "-3"]])
def test_zoo_mistakes_are_one_line(tmp_path, fmnist_checkpoint, args):
    directory = one_model_zoo(tmp_path, fmnist_checkpoint)
    result = runner.invoke(app, [*args, "--zoo", str(directory)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_zoo_evaluate_runs_every_suite_resumes_and_updates_cards(tmp_path, fmnist_checkpoint):
    directory = one_model_zoo(tmp_path, fmnist_checkpoint)
    store = tmp_path / "s.db"
    args = ["zoo", "evaluate", "--zoo", str(directory), "--store", str(store), "--limit", "64", "--json"]
    first = runner.invoke(app, [*args, "--update-cards"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.output)
    (row,) = out["rows"]
    assert row["name"] == "erm" and all(row["metrics"][k] is not None for k in HEADLINE)
    assert 0.0 <= row["metrics"]["robust_linf_0.1"] <= row["metrics"]["clean_acc"]
    card = json.loads((directory / "erm" / "model.json").read_text())
    assert card["metrics"]["clean_acc"] == row["metrics"]["clean_acc"]
    assert card["metrics"]["protocol"]["dataset"] == "fashion-mnist[:64]"
    assert len(card["metrics"]["protocol"]["content"]) == 64  # the data's content fingerprint
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
    options = {**ZOO_OPTIONS, "corruptions": ("gaussian_noise", "frost"), "severities": (2, 5)}
    options.pop("eps"), options.pop("attack"), options.pop("norm")
    results, caches = [], []
    for budget in (2**30, 0):
        cache = EvalCache.create(budget)
        evaluate_model(fmnist_checkpoint, ["corruptions", "calibration"], store=tmp_path / f"{budget}.db",
                       options=options, limit=96, batch_size=32, device="cpu", cache=cache)
        with Store(tmp_path / f"{budget}.db") as db:
            results.append({r.id.task: {k: v for k, v in r.metrics.items() if k != "seconds"} for r in db.tasks()})
        caches.append(cache)
    with_cache, without = results
    assert caches[0].logits.hits == 4, "each calibration cell reused the corruptions cell's logits"
    assert caches[1].logits.hits == caches[1].images.hits == 0
    assert with_cache == without
    for name in ("gaussian_noise", "frost"):
        for s in (2, 5):
            assert with_cache[CorruptionCell(name, s, "cifar")]["accuracy"] == \
                with_cache[CalibrationCell(name, s, "cifar")]["accuracy"]


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


class RecordingPresenter(SilentPresenter):
    """Keeps what a workflow shows (no terminal)."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, object]] = []

    def section(self, title):
        self.shown.append(("section", title))

    def message(self, text):
        self.shown.append(("message", text))

    def results(self, title, rows):
        self.shown.append(("results", (title, list(rows))))

    def zoo_table(self, title, rows):
        self.shown.append(("zoo_table", (title, list(rows))))

    def checks(self, checks):
        self.shown.append(("checks", list(checks)))

    @contextmanager
    def busy(self, text):
        self.shown.append(("busy", text))
        yield


def test_demo_zoo_step_evaluates_the_zoo_and_shows_the_checks(tmp_path, fmnist_checkpoint, monkeypatch):
    from shiftlab.app.demo import DEMO_STEPS, DemoRun, zoo_step

    assert zoo_step in DEMO_STEPS
    monkeypatch.setenv("SHIFTLAB_ZOO", str(one_model_zoo(tmp_path, fmnist_checkpoint)))
    presenter = RecordingPresenter()
    zoo_step(DemoRun(tmp_path, fmnist_checkpoint, tmp_path / "demo.db", presenter, limit=32))
    shown = dict(presenter.shown)
    title, rows = shown["zoo_table"]
    assert "zoo on fashion-mnist[:32]" in title and [r.name for r in rows] == ["erm"]
    claims = {c.claim: c.holds for c in shown["checks"]}
    assert claims["ERM's robust accuracy is near 0"] is not None
    assert all(v is None for k, v in claims.items() if k.startswith("augmix"))
    with Store(tmp_path / "demo.db") as db:
        assert {r.id.dataset.label for r in db.tasks()} == {"fashion-mnist[:32]"}


def test_demo_shift_family_steps_run_and_store_their_rows(tmp_path, fmnist_checkpoint, monkeypatch):
    from shiftlab.app.demo import (
        DEMO_STEPS,
        DemoRun,
        adaptation_step,
        certify_step,
        natural_step,
        spatial_step,
        stability_step,
    )

    steps = [spatial_step, stability_step, natural_step, adaptation_step, certify_step]
    assert all(step in DEMO_STEPS for step in steps) and DEMO_STEPS[-1].__name__ == "report_step"
    zoo = tmp_path / "zoo"
    for name in ("erm", "pgd-at", "mixup", "gaussian-smoothing"):
        shutil.copytree(ZOO_DIR / name, zoo / name)
    monkeypatch.setenv("SHIFTLAB_ZOO", str(zoo))
    presenter = RecordingPresenter()
    run = DemoRun(tmp_path, fmnist_checkpoint, tmp_path / "demo.db", presenter, limit=16)
    for step in steps:
        step(run)
    shown = [value for kind, value in presenter.shown if kind == "results"]
    assert len(shown) == len(steps) and all(rows for _, rows in shown)
    suites = {title: {r.suite for r in rows} for title, rows in shown}
    assert set().union(*suites.values()) >= {"spatial", "translation", "fourier", "stability", "natural",
                                             "corruptions", "certify"}
    with Store(tmp_path / "demo.db") as db:
        kinds = {type(r.id.task).__name__ for r in db.tasks()}
        certified = {m.name for m in db.models() if db.tasks(m.fingerprint, suite="certify")}
    assert {"AdaptedCell", "AdaptedSummary", "CertifyCell", "StabilityCell", "NaturalShiftCell"} <= kinds
    assert certified == {"small-cnn-gaussian-smoothing"}


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


def fails_on_odd(n: int) -> int:
    if n % 2:
        raise UserError(f"job {n} is odd")
    return n * 10


def test_executors_report_each_failing_job_in_one_line():
    for executor in (LocalExecutor(), ProcessExecutor(2)):
        outcomes = executor.map(fails_on_odd, [0, 1, 2, 3])
        assert [o.result for o in outcomes] == [0, None, 20, None]
        assert [o.error for o in outcomes if not o.ok] == ["job 1 is odd", "job 3 is odd"]
        with pytest.raises(UserError, match=r"failed in 2 of 4 job\(s\).*job 1 is odd"):
            raise_failures(outcomes, "test")
