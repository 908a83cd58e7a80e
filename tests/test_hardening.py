"""Issue 14: results that can never be stale, concurrent runs that share the work, every user mistake
a clean one-line error before any work, downloads only when asked and verified, models by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.errors import DatasetNotFoundError
from shiftlab.models import ModelCard, build_model, save_checkpoint
from shiftlab.models.base import ModelConfig
from shiftlab.store import Store

REPO = Path(__file__).resolve().parents[1]


def colour_folder(root: Path, swap: bool = False, per_class: int = 6) -> Path:
    """Two classes of 32-px images: red and blue (labels swapped with ``swap``)."""
    for c, colour in enumerate(((255, 0, 0), (0, 0, 255))):
        folder = root / "test" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (32, 32), colour if not swap else ((0, 0, 255), (255, 0, 0))[c]).save(folder / f"{i}.png")
    return root


def rgb_checkpoint(path: Path) -> Path:
    config = ModelConfig("small-cnn", 2, 3, (32, 32), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    save_checkpoint(path, build_model(config), ModelCard(config, name="rgb", dataset="image-folder"))
    return path


def test_another_folder_with_the_same_name_is_never_reused(tmp_path):
    """Item 1: the store used to answer 'reused 1' with the other folder's accuracy."""
    ckpt = rgb_checkpoint(tmp_path / "m")
    a, b = colour_folder(tmp_path / "a"), colour_folder(tmp_path / "b", swap=True)
    store = tmp_path / "s.db"
    first = evaluate_model(ckpt, ["clean"], store=store, options={}, dataset="image-folder", data_root=a, device="cpu")
    second = evaluate_model(ckpt, ["clean"], store=store, options={}, dataset="image-folder", data_root=b, device="cpu")
    fresh = evaluate_model(ckpt, ["clean"], store=tmp_path / "fresh.db", options={}, dataset="image-folder",
                           data_root=b, device="cpu")
    assert second.ran == ["clean"] and not second.skipped
    acc = {r.id.dataset.content: r.metrics["accuracy"] for r in second.rows}
    assert acc[fresh.rows[0].id.dataset.content] == fresh.rows[0].metrics["accuracy"]
    assert first.rows[0].metrics["accuracy"] + fresh.rows[0].metrics["accuracy"] == pytest.approx(1.0)
    with Store(store) as db:
        sources = {ds.content: src for ds, src in db.datasets().values()}
    assert any(str(a) in s for s in sources.values()) and any(str(b) in s for s in sources.values())


def test_two_runs_of_the_same_tasks_into_one_store_both_finish_and_share_the_work(tmp_path, fmnist_checkpoint):
    """Item 3: the second run used to die with sqlite3.IntegrityError."""
    store = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "shiftlab", "evaluate", "--model", str(fmnist_checkpoint), "--store", str(store),
           "--suite", "corruptions", "--corruptions", "gaussian_noise,shot_noise,impulse_noise,glass_blur",
           "--severities", "1,3,5", "--limit", "1500", "--device", "cpu", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    reports = [json.loads(out) for out, _ in outs]
    cells = 12
    assert len(reports[0]["ran"]) + len(reports[1]["ran"]) == cells  # each cell computed exactly once
    for r in reports:
        assert len(r["ran"]) + len(r["skipped"]) + len(r["waited"]) == cells
    with Store(store) as db:
        rows = db.tasks(suite="corruptions", summaries=False)
    assert len(rows) == cells and len({r.id.task for r in rows}) == cells
    assert reports[0]["results"] == reports[1]["results"]


BAD = [
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "8/0"], "divides by zero"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "abc"], "--eps expects numbers"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "-0.1"], "--eps values must be positive"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "inf"], "finite"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "2"], "above 1"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "0.1", "--norm", "l3"], "--norm"),
    (["evaluate", "--model", "zoo:erm", "--suite", "adversarial", "--eps", "0.1", "--attack", "nope"], "unknown attack"),
    (["evaluate", "--model", "zoo:erm", "--device", "cuda:7"], "--device"),
    (["evaluate", "--model", "zoo:erm", "--device", "banana"], "--device"),
    (["evaluate", "--model", "zoo:erm", "--limit", "0"], "--limit"),
    (["evaluate", "--model", "zoo:erm", "--limit", "-5"], "--limit"),
    (["evaluate", "--model", "zoo:erm", "--batch-size", "0"], "--batch-size"),
    (["evaluate", "--model", "zoo:erm", "--seed", "-1"], "--seed"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--severities", "0"], "--severities"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--severities", "6"], "--severities"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--severities", "x"], "--severities"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--corruptions", "fogg"], "unknown shift"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--params", "mnist"], "parameter table"),
    (["evaluate", "--model", "zoo:erm", "--suite", "corruptions", "--baseline", "/no/model"], "does not exist"),
    (["evaluate", "--model", "zoo:erm", "--suite", "ood", "--ood-set", "nope"], "unknown dataset"),
    (["evaluate", "--model", "zoo:erm", "--eps", "0.1"], "add --suite adversarial"),
    (["evaluate", "--model", "zoo:erm", "--suite", "nope"], "unknown suite"),
    (["evaluate", "--model", "zoo:erm", "--dataset", "nope"], "unknown dataset"),
    (["evaluate", "--model", "zoo:nope"], "does not exist"),
    (["evaluate", "--model", "zoo:erm", "--pretrained", "DEFAULT"], "--pretrained applies"),
    (["evaluate", "--model", "torchvision:resnet18"], "pass --dataset"),
    (["evaluate", "--model", "zoo:erm", "--limit", "abc"], "--limit"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--ema", "2"], "--ema"),
    (["train", "--select", "x"], "--select"),
    (["train", "--optimizer", "x"], "--optimizer"),
    (["train", "--schedule", "x"], "--schedule"),
    (["train", "--label-smoothing", "1.5"], "--label-smoothing"),
    (["train", "--device", "banana"], "--device"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["corrupt", "--dataset", "fashion-mnist", "--out", "OUT", "--severities", "9"], "--severities"),
    (["corrupt", "--dataset", "fashion-mnist", "--out", "OUT", "--params", "x"], "parameter table"),
    (["report", "--store", "STORE", "--format", "x"], "unknown report format"),
    (["leaderboard", "--store", "STORE"], "no results store"),
    (["zoo", "show", "nope"], "unknown zoo model"),
]


@pytest.mark.parametrize("argv, needle", BAD, ids=[" ".join(a[:4]) + f" [{i}]" for i, (a, _) in enumerate(BAD)])
def test_every_bad_option_is_one_line_exit_2_no_traceback_and_creates_nothing(argv, needle, tmp_path, capsys,
                                                                               monkeypatch):
    """Item 4: each bad value is rejected before any work (nothing created), as one line on stderr."""
    from shiftlab.cli import main

    store = tmp_path / "results" / "s.db"
    argv = [a.replace("OUT", str(tmp_path / "out")).replace("STORE", str(store)) for a in argv]
    if argv[0] in ("evaluate",):
        argv += ["--store", str(store)]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run"), "--train-limit", "256"]
    monkeypatch.setattr(sys, "argv", ["shiftlab", *argv])
    with pytest.raises(SystemExit) as code:
        main()
    err = capsys.readouterr().err
    assert code.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    assert not store.exists() and not store.parent.exists() and not (tmp_path / "out").exists()
    assert not (tmp_path / "run").exists()


def test_download_is_verified_and_only_on_request(tmp_path, monkeypatch):
    """Item 6: --download exists, fetches into --data-root, and keeps nothing whose checksum differs."""
    from shiftlab.data import download, fashion_mnist, load_dataset

    debian = Path("/usr/share/datasets/fashion-mnist")
    monkeypatch.setattr(download, "retrieve", lambda url, target: target.write_bytes(
        (debian / url.rsplit("/", 1)[1]).read_bytes()))
    with pytest.raises(DatasetNotFoundError, match="checksum"):  # the archives' published checksums
        load_dataset("fashion-mnist", "test", root=tmp_path / "a", download=True)
    assert not any((tmp_path / "a").iterdir())
    local = tuple((name, download.md5_of(debian / name)) for name, _ in fashion_mnist.FILES)
    monkeypatch.setattr(fashion_mnist, "FILES", local)
    ds = load_dataset("fashion-mnist", "test", root=tmp_path / "b", download=True, limit=10)
    assert len(ds) == 10 and len(list((tmp_path / "b").iterdir())) == 4
    with pytest.raises(DatasetNotFoundError, match="--download"):
        load_dataset("fashion-mnist", "test", root=tmp_path / "c")


def test_a_torchvision_model_by_name_is_evaluated_with_its_card_written_on_the_fly(tmp_path):
    """Item 6: `evaluate --model torchvision:NAME` used to look for a checkpoint file."""
    data = colour_folder(tmp_path / "d")
    report = evaluate_model("torchvision:resnet18", ["clean"], store=tmp_path / "s.db", options={},
                            dataset="image-folder", data_root=data, device="cpu")
    [row] = report.rows
    assert row.metrics["n"] == 12
    with Store(tmp_path / "s.db") as db:
        [model] = db.models()
    assert model.name == "torchvision:resnet18 (random init)" and model.arch == "torchvision:resnet18"
    assert model.card["config"]["num_classes"] == 2 and model.checkpoint_path == "torchvision:resnet18"
    again = evaluate_model("torchvision:resnet18", ["clean"], store=tmp_path / "s.db", options={},
                           dataset="image-folder", data_root=data, device="cpu")
    assert again.skipped == ["clean"]  # the seeded initialisation has one fingerprint


def test_the_store_is_created_only_after_everything_was_checked(tmp_path, fmnist_checkpoint):
    """Item 7: a failed evaluate still created the store and its folders."""
    store = tmp_path / "deep" / "s.db"
    with pytest.raises(DatasetNotFoundError):
        evaluate_model(fmnist_checkpoint, ["clean"], store=store, options={}, data_root=tmp_path / "nothing",
                       device="cpu")
    assert not store.parent.exists()
