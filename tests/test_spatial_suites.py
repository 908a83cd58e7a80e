"""The spatial, translation and fourier suites on real Fashion-MNIST (the zoo's ERM small-cnn): each cell
against its definition recomputed image by image, the identity settings that must give the clean
accuracy exactly, the orderings that hold image by image (worst-of-k ≤ random, a finer grid ≤ a coarser
one), the Fourier heat map of a low-pass model, batch-size independence, resume after a failure midway,
and the report's sections and leaderboard columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CleanCell, FourierCell, SpatialCell, TranslationCell, decode
from shiftlab.data import load_dataset
from shiftlab.evaluation import RunOptions, load_subject, make_context, run_suites, suite_requests
from shiftlab.evaluation.suites.fourier import FOURIER_BLOCK, block_errors, is_low
from shiftlab.evaluation.suites.spatial import SPATIAL_BLOCK, draws, parse_grid, parse_modes
from shiftlab.report import load_leaderboard, write_report
from shiftlab.shifts import TRANSFORMS
from shiftlab.shifts.fourier import basis_frequencies, mirror
from shiftlab.shifts.spatial import CanvasParams, affine_params
from shiftlab.store import Store

MODEL = "zoo:erm"
LIMIT = 32
OPTIONS = {"spatial_k": "4", "spatial_grid": "3x3", "fourier_norm": "0,4", "fourier_stride": "4"}
SUITES = ["clean", "spatial", "translation", "fourier"]
pytestmark = pytest.mark.usefixtures("single_thread")  # many small forward passes: no thread contention


@pytest.fixture(scope="module")
def suite_store(tmp_path_factory, single_thread) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("spatial") / "store.db"
    report = evaluate_model(MODEL, SUITES, store=path, options=OPTIONS, limit=LIMIT, device="cpu")
    return path, {row.id.task: row for row in report.rows}


@pytest.fixture(scope="module")
def model_and_images():
    from shiftlab.models import load_model

    model, _ = load_model(MODEL)
    x, y = load_dataset("fashion-mnist", "test", limit=LIMIT).get_batch(torch.arange(LIMIT))
    return model, x, y


def classify(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x).argmax(1)


def one_by_one(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predictions of every image classified alone (the oracle for the suites' pair batching)."""
    return torch.cat([classify(model, x[i:i + 1]) for i in range(len(x))])


# ---- spatial ----------------------------------------------------------------------------------------------


def test_spatial_cells_follow_their_definitions(suite_store, model_and_images):
    _, rows = suite_store
    model, x, y = model_and_images
    random, worst, grid = (rows[SpatialCell("random", 30.0, 3.0)], rows[SpatialCell("worst-of-k", 30.0, 3.0, k=4)],
                           rows[SpatialCell("grid", 30.0, 3.0, rotations=3, translations=3)])
    clean = rows[CleanCell()].metrics["accuracy"]
    images = {name: row.artifacts["per_image"] for name, row in (("random", random), ("worst", worst), ("grid", grid))}
    for row in (random, worst, grid):
        assert row.metrics["clean_accuracy"] == clean and row.metrics["n"] == LIMIT
    # the random transform is the first of the k draws, and the 3x3 grid holds the identity: image by image
    for r, w in zip(images["random"]["correct"], images["worst"]["correct"], strict=True):
        assert r or not w
    for g, c in zip(images["grid"]["correct"], images["grid"]["clean_correct"], strict=True):
        assert not g or c
    assert worst.metrics["accuracy"] <= random.metrics["accuracy"] < clean  # ERM: ±30° hurts (67 % vs 96 %)
    assert grid.metrics["accuracy"] <= clean and worst.metrics["accuracy"] < worst.metrics["accuracy/average"]
    table = grid.artifacts["per_transform"]
    identity = next(t for t, (a, dx, dy) in enumerate(zip(table["angle"], table["dx"], table["dy"], strict=True))
                    if a == dx == dy == 0)
    assert table["accuracy"][identity] == clean and len(table["accuracy"]) == 27
    assert grid.metrics["accuracy"] <= min(table["accuracy"])  # the worst case is below every grid transform
    assert grid.artifacts["limits"] == {"degrees": 30.0, "dx": 2.625, "dy": 2.625}
    # every recorded breaking transform breaks its image when applied alone
    for per in images.values():
        assert [n > 0 for n in per["n_broken"]] == [not c for c in per["correct"]]
        assert [b >= 0 for b in per["broken_by"]] == [not c for c in per["correct"]]
        broken = [i for i, c in enumerate(per["correct"]) if not c]
        params = affine_params(degrees=torch.tensor([per["angle"][i] for i in broken], dtype=torch.float64),
                               dx=torch.tensor([per["dx"][i] for i in broken], dtype=torch.float64),
                               dy=torch.tensor([per["dy"][i] for i in broken], dtype=torch.float64))
        warped = TRANSFORMS.get("spatial").apply(x[broken], params)
        assert (one_by_one(model, warped) != y[broken]).all()


def test_worst_of_k_equals_the_per_image_oracle(suite_store, model_and_images):
    """Each image's k draws, warped and classified alone, give the stored flags and counts."""
    _, rows = suite_store
    model, x, y = model_and_images
    cell = SpatialCell("worst-of-k", 30.0, 3.0, k=4)
    per = rows[cell].artifacts["per_image"]
    chosen = draws(0, cell, torch.arange(LIMIT), 4, 28, 28)  # B×k×3
    assert chosen[..., 0].abs().max() <= 30 and chosen[..., 1:].abs().max() <= 2.625
    assert chosen[..., 0].min() < -20 and chosen[..., 0].max() > 20  # spread over the range
    transform = TRANSFORMS.get("spatial")
    wrong = torch.stack([one_by_one(model, transform.apply(x, affine_params(chosen[:, j, 0], chosen[:, j, 1],
                                                                            chosen[:, j, 2]))) != y for j in range(4)])
    assert per["correct"] == (~wrong.any(0)).tolist() and per["n_broken"] == wrong.sum(0).tolist()
    assert all(wrong[b, i] for i, b in enumerate(per["broken_by"]) if b >= 0)
    assert torch.equal(draws(0, cell, torch.arange(LIMIT), 1, 28, 28)[:, 0], chosen[:, 0])  # random = first draw
    assert not torch.equal(draws(1, cell, torch.arange(LIMIT), 4, 28, 28), chosen)  # the seed matters


def test_zero_limits_give_the_clean_accuracy_and_a_finer_grid_is_never_better(tmp_path):
    zero = {"spatial_rotation": "0", "spatial_translation": "0", "spatial_k": "3", "spatial_grid": "2x2"}
    rows = evaluate_model(MODEL, ["spatial"], store=tmp_path / "s.db", options=zero, limit=LIMIT, device="cpu").rows
    assert {r.id.task.mode for r in rows} == {"random", "worst-of-k", "grid"}
    for row in rows:
        per = row.artifacts["per_image"]
        assert per["correct"] == per["clean_correct"] and row.metrics["accuracy"] == row.metrics["clean_accuracy"]
    grids = {}
    for size in ("3x1", "5x1"):  # rotations only: {−30, 0, 30} ⊂ {−30, −15, 0, 15, 30}
        options = {"spatial_modes": "grid", "spatial_grid": size, "spatial_translation": "0"}
        (row,) = evaluate_model(MODEL, ["spatial"], store=tmp_path / f"{size}.db", options=options, limit=LIMIT,
                                device="cpu").rows
        grids[size] = row
    coarse, fine = (grids[s].artifacts["per_image"]["correct"] for s in ("3x1", "5x1"))
    assert all(c or not f for c, f in zip(coarse, fine, strict=True))
    assert fine.count(True) <= coarse.count(True) < grids["3x1"].metrics["clean_accuracy"] * LIMIT
    assert grids["5x1"].artifacts["per_transform"]["angle"] == [-30.0, -15.0, 0.0, 15.0, 30.0]


# ---- translation --------------------------------------------------------------------------------------------


def test_translation_curve_follows_its_definition(suite_store, model_and_images):
    _, rows = suite_store
    model, x, y = model_and_images
    cells = {d: rows[TranslationCell(d, 0.75, "zero")] for d in range(4)}  # 21-px object on 28 px: reach 3
    assert set(cells) == {c.distance for c in rows if isinstance(c, TranslationCell)}
    assert cells[0].metrics["accuracy"] == cells[0].metrics["accuracy/all_directions"]
    assert cells[3].metrics["accuracy"] < cells[0].metrics["accuracy"]  # ERM is not translation invariant
    transform = TRANSFORMS.get("canvas-translate")
    for d, row in cells.items():
        per = row.artifacts["per_direction"]
        assert len(per) == (1 if d == 0 else 8)
        assert row.metrics["accuracy"] == pytest.approx(sum(per.values()) / len(per), abs=1e-12)
        assert row.metrics["accuracy/all_directions"] <= min(per.values())
        assert row.metrics["clean_accuracy"] == rows[CleanCell()].metrics["accuracy"]
        for (name, acc), (dx, dy) in zip(per.items(), row.artifacts["offsets"], strict=True):
            assert max(abs(dx), abs(dy)) == d
            moved = transform.apply(x, CanvasParams(torch.tensor([[dx, dy]] * LIMIT), 0.75, "zero"))
            assert acc == float((one_by_one(model, moved) == y).sum()) / LIMIT, name


def test_a_whole_canvas_at_distance_zero_is_the_clean_image(tmp_path):
    options = {"translation_scale": "1", "translation_distances": "0", "translation_fill": "reflect"}
    (row,) = evaluate_model(MODEL, ["translation"], store=tmp_path / "t.db", options=options, limit=LIMIT,
                            device="cpu").rows
    assert row.id.task == TranslationCell(0, 1.0, "reflect")
    assert row.metrics["accuracy"] == row.metrics["clean_accuracy"]
    with pytest.raises(UserError, match="below the 28-px canvas"):
        evaluate_model(MODEL, ["translation"], store=tmp_path / "t.db", options={"translation_distances": "2,28"},
                       limit=LIMIT, device="cpu")


# ---- fourier -------------------------------------------------------------------------------------------------


def test_fourier_heat_map(suite_store):
    _, rows = suite_store
    zero, four = rows[FourierCell(0.0, 4)], rows[FourierCell(4.0, 4)]
    clean_error = 1 - rows[CleanCell()].metrics["accuracy"]
    for row in (zero, four):
        assert row.metrics["clean_error"] == pytest.approx(clean_error, abs=1e-12)
        heat = row.artifacts["heatmap"]
        assert heat["rows"] == heat["cols"] == [-12, -8, -4, 0, 4, 8, 12]
        grid = heat["error"]
        assert all(grid[a][b] == grid[6 - a][6 - b] for a in range(7) for b in range(7))  # mirror pairs
        cells = [(i, j, grid[r][c]) for r, i in enumerate(heat["rows"]) for c, j in enumerate(heat["cols"])]
        low = [e for i, j, e in cells if is_low(i, j, 28, 28)]
        assert len(low) == 9  # |i|, |j| < 7
        assert row.metrics["error"] == pytest.approx(sum(e for *_, e in cells) / 49, abs=1e-12)
        assert row.metrics["error/low"] == pytest.approx(sum(low) / 9, abs=1e-12)
    # r = 0 adds nothing: every frequency has exactly the clean error
    assert all(e == pytest.approx(clean_error, abs=1e-12) for line in zero.artifacts["heatmap"]["error"] for e in line)
    assert four.metrics["error"] > clean_error + 0.05 and four.metrics["error/max"] >= four.metrics["error/high"]


class LowPass(nn.Module):
    """The model behind an ideal low-pass filter: every frequency with max(|i|/H, |j|/W) ≥ 1/4 removed."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        fi, fj = torch.fft.fftfreq(h).abs().view(-1, 1), torch.fft.fftfreq(w).abs().view(1, -1)
        keep = (torch.maximum(fi, fj) < 0.25).to(torch.complex64)
        return self.model(torch.fft.ifft2(torch.fft.fft2(x) * keep).real.to(x.dtype))


def test_a_low_pass_model_ignores_high_frequencies(tmp_path):
    """On images kept inside [0.1, 0.9] (r = 1.4 moves a pixel by at most √2·1.4/28 < 0.1, so nothing clips), a
    low-pass model's error at a high frequency is its clean error; the same model unfiltered is hurt there,
    and the low-pass one's predictions do change at low frequencies."""
    high = [(-14, -14), (-14, 0), (0, -14), (-13, 7), (9, -11), (7, 13), (12, 12), (-8, 10)]
    low = [(0, 1), (1, 0), (1, 1), (2, -1), (0, 3), (3, 3), (-4, 2), (5, 0)]
    freqs = torch.tensor(high + low)
    subject = load_subject(MODEL, RunOptions(limit=LIMIT, batch_size=64, device="cpu"))
    x, y = subject.data.get_batch(torch.arange(LIMIT))
    x = 0.1 + 0.8 * x
    counts = {}
    with Store(tmp_path / "s.db") as store:
        for name, model in (("plain", subject.model), ("low-pass", LowPass(subject.model))):
            subject.model = model
            ctx = make_context(subject, store)
            counts[name] = block_errors(ctx, FourierCell(1.4, 1), freqs, 0, x, y)
    lp, plain = counts["low-pass"], counts["plain"]
    assert all(abs(e - lp["clean_errors"]) <= 1 for e in lp["errors"][:len(high)]), lp
    assert sum(abs(e - lp["clean_errors"]) for e in lp["errors"][len(high):]) >= len(low), lp
    assert sum(plain["errors"][:len(high)]) >= len(high) * plain["clean_errors"] + 12, plain


# ---- batch size, resume, options -------------------------------------------------------------------------------

SMALL = {"spatial_k": "3", "spatial_grid": "2x2", "translation_distances": "2", "fourier_stride": "7"}


def stored(rows) -> dict:
    return {r.id.task: ({k: v for k, v in r.metrics.items() if k != "seconds"}, r.artifacts) for r in rows}


def test_results_do_not_depend_on_the_batch_size(tmp_path):
    results = [stored(evaluate_model(MODEL, ["spatial", "translation", "fourier"], store=tmp_path / f"{b}.db",
                                     options=SMALL, limit=20, batch_size=b, device="cpu").rows) for b in (5, 256)]
    assert len(results[0]) == 5 and results[0] == results[1]


class Counting(nn.Module):
    """Counts forward passes; raises on pass ``fail_at`` (a run killed midway)."""

    def __init__(self, model: nn.Module, fail_at: int | None = None) -> None:
        super().__init__()
        self.model, self.fail_at, self.calls = model, fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("killed")
        return self.model(x)


@pytest.mark.parametrize(("suite", "options", "limit", "block"), [
    ("fourier", {"fourier_stride": "7"}, 3 * FOURIER_BLOCK, FOURIER_BLOCK),
    ("spatial", {"spatial_modes": "worst-of-k", "spatial_k": "2"}, 2 * SPATIAL_BLOCK, SPATIAL_BLOCK),
])
def test_a_failed_run_resumes_at_its_first_unfinished_block(tmp_path, suite, options, limit, block):
    def run(db: Path, model_wrap: Counting) -> list:
        subject = load_subject(MODEL, RunOptions(limit=limit, batch_size=64, device="cpu"))
        model_wrap.model = subject.model
        subject.model = model_wrap
        with Store(db) as store:
            return run_suites(make_context(subject, store), suite_requests([suite], options)).rows

    full = Counting(nn.Identity())
    reference = stored(run(tmp_path / "ref.db", full))
    blocks = limit // block
    per_block = full.calls // blocks
    with pytest.raises(RuntimeError, match="killed"):
        run(tmp_path / "kill.db", Counting(nn.Identity(), fail_at=per_block + 2))
    with Store(tmp_path / "kill.db") as store:
        assert store.tasks(with_artifacts=False) == []
    resumed = Counting(nn.Identity())
    assert stored(run(tmp_path / "kill.db", resumed)) == reference
    assert resumed.calls == full.calls - per_block  # the first block was read back, not recomputed


def test_options_are_validated_and_identities_round_trip():
    assert parse_grid("31x5") == (31, 5) and parse_modes("grid, random") == ("grid", "random")
    for flag, value, match in (("spatial_grid", "5", "ROTATIONSxTRANSLATIONS"), ("spatial_modes", "best", "takes"),
                               ("fourier_norm", "-1", "non-negative"), ("spatial_rotation", "200", r"\[0, 180\]"),
                               ("translation_fill", "wrap", "zero, reflect"), ("spatial_k", "0", "at least|1..")):
        with pytest.raises(UserError, match=match):
            evaluate_model(MODEL, ["spatial", "translation", "fourier"], store=":memory:", options={flag: value},
                           device="cpu")
    cells = [SpatialCell("random", 30.0, 3.0), SpatialCell("worst-of-k", 15.0, 0.0, k=10),
             SpatialCell("grid", 30.0, 3.0, rotations=31, translations=5), TranslationCell(3, 0.75, "zero"),
             FourierCell(4.0, 2)]
    assert [decode(c.key()) for c in cells] == cells
    for bad in (lambda: SpatialCell("random", 30.0, 3.0, k=3), lambda: SpatialCell("grid", 30.0, 3.0, rotations=3),
                lambda: SpatialCell("worst-of-k", 30.0, 3.0, k=0), lambda: FourierCell(-1.0, 1),
                lambda: TranslationCell(1, 0.0, "zero")):
        with pytest.raises(ValueError):
            bad()
    assert len(basis_frequencies(28, 28, 4)) == 25 and mirror(12, 28) == -12


# ---- report -------------------------------------------------------------------------------------------------------


def test_report_draws_the_three_sections_and_leaderboard_columns(suite_store, tmp_path):
    path, rows = suite_store
    with Store(path) as store:
        board = load_leaderboard(store)
        write_report(store, tmp_path / "out", "html")
    cells = board.cells[0]
    worst = rows[SpatialCell("worst-of-k", 30.0, 3.0, k=4)].metrics["accuracy"]
    assert cells["spatial_worst_of_4"].value == worst and cells["spatial_worst_of_4"].n == LIMIT
    assert cells["spatial_grid_3x3"].value == rows[SpatialCell("grid", 30.0, 3.0, rotations=3,
                                                                  translations=3)].metrics["accuracy"]
    assert cells["translation_acc_d3"].value == rows[TranslationCell(3, 0.75, "zero")].metrics["accuracy"]
    assert cells["fourier_error_r4_stride4"].value == rows[FourierCell(4.0, 4)].metrics["error"]
    assert {"spatial_worst_of_4", "translation_acc_d3"} <= {c.key for c in board.axes()}
    card = next((tmp_path / "out").glob("model-*.html")).read_text()
    for heading, words in (("Spatial robustness (rotations and translations)", ("rotation angle", "worst-of-4")),
                           ("Translation on a canvas", ("all 8 directions", "shift d")),
                           ("Fourier heat map", ("horizontal frequency j", "Fourier heat map r=4 stride 4"))):
        part = card.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]
        assert "<svg" in part and "has not been run" not in part, heading
        assert all(w in part for w in words), heading
    assert not re.search(r"\bnan\b", card, re.IGNORECASE)
