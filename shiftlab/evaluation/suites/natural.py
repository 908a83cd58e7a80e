"""The natural-shift suite: accuracy on test sets with the evaluated data's classes but drawn differently,
and effective robustness against a reference set of models (Taori, Dave, Shankar, Carlini, Recht &
Schmidt 2020, "Measuring Robustness to Natural Distribution Shifts in Image Classification",
arXiv:2007.00644; Miller et al. 2021, "Accuracy on the Line", arXiv:2107.04649).

Tasks: the in-distribution accuracy (the clean suite's :class:`~shiftlab.core.identity.CleanCell`, shared
with it) and one :class:`~shiftlab.core.identity.NaturalShiftCell` per shifted set (``--shifted-data NAME``
or ``NAME:/dir``; by default the dataset's own natural-shift sets, ``data.natural.NATURAL_SHIFTS``). A set
is read at the evaluated data's image size and channels, ``--limit`` keeps its first N images too, and its
classes are aligned with the model's by name (``data.natural.align_classes``); a set covering only some of
the classes (ImageNet-A, ImageNet-R) is scored by the argmax over those classes, as their papers do.

Summary, per shifted set: the reference models' in-distribution and shifted accuracies (``--reference``:
by default the zoo's models trained on the same dataset, else a comma list of checkpoints; their rows are
evaluated first when missing, as the mCE baseline's are), the least-squares line through them on probit
axes, Φ⁻¹(shifted) = a·Φ⁻¹(in-distribution) + b, with its R²; for the evaluated model, the probit residual
Φ⁻¹(shifted) − (a·Φ⁻¹(ID) + b) and the effective robustness shifted − Φ(a·Φ⁻¹(ID) + b), in accuracy units
(Taori et al.'s definition on Miller et al.'s probit axes). The evaluated model is left out of its own fit;
an accuracy is clipped to [1/(2n), 1 − 1/(2n)] (n images) before Φ⁻¹; a fit needs three reference models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.identity import (
    AdaptedCell,
    AdaptedNaturalCell,
    AdaptedSummary,
    CleanCell,
    NaturalShiftCell,
    Summary,
    TaskIdentity,
)
from shiftlab.data import DATASETS, ImageDataset, load_dataset
from shiftlab.data.natural import DERIVED_FROM, NATURAL_SHIFTS, ClassAlignment, align_classes
from shiftlab.evaluation.adaptation import (
    ADAPT_FLAGS,
    Adaptation,
    AdaptOptions,
    adaptation,
    adapted_params,
    adapted_runner,
    adapted_tasks,
)
from shiftlab.evaluation.context import EvalContext, evaluated_fingerprint, identify
from shiftlab.evaluation.flags import Flag, items, parse_checkpoint
from shiftlab.evaluation.forward import forward
from shiftlab.evaluation.metrics import classification_result
from shiftlab.evaluation.suite import SUITES, NoOptions, Prerequisite, Suite, SuiteMeta, Task, TaskResult
from shiftlab.evaluation.suites.clean import build_clean
from shiftlab.models import read_card, zoo_dir
from shiftlab.store import TaskRow

SUITE = "natural"
ZOO = "zoo"
NONE = "none"
MIN_REFERENCES = 3
"""Reference models a fit needs (two points always lie on a line)."""
_NORMAL = NormalDist()


# ---------------------------------------------------------------------------------------------
# the probit-linear fit (pure)


def probit(p: float) -> float:
    """Φ⁻¹(p), the standard normal quantile."""
    return _NORMAL.inv_cdf(p)


def clip_accuracy(accuracy: float, n: float) -> float:
    """An accuracy over ``n`` images kept inside [1/(2n), 1 − 1/(2n)], so Φ⁻¹ of it is finite."""
    half = 0.5 / max(n, 1.0)
    return min(max(accuracy, half), 1.0 - half)


@dataclass(frozen=True, slots=True)
class ProbitFit:
    """The least-squares line Φ⁻¹(shifted) = slope·Φ⁻¹(in-distribution) + intercept over ``n`` models;
    ``r2`` is its coefficient of determination on the probit axes (None when the shifted accuracies are
    all equal)."""

    slope: float
    intercept: float
    r2: float | None
    n: int

    def predicted_probit(self, in_distribution: float) -> float:
        return self.slope * probit(in_distribution) + self.intercept

    def predicted(self, in_distribution: float) -> float:
        """The shifted accuracy the line predicts at an in-distribution accuracy."""
        return _NORMAL.cdf(self.predicted_probit(in_distribution))


def probit_fit(in_distribution: Sequence[float], shifted: Sequence[float]) -> ProbitFit:
    """Fit Φ⁻¹(shifted) on Φ⁻¹(in-distribution) by least squares (accuracies strictly inside (0, 1))."""
    if len(in_distribution) != len(shifted) or len(shifted) < 2:
        raise ValueError(f"a fit needs two or more (in-distribution, shifted) pairs, got {len(in_distribution)} "
                         f"and {len(shifted)} values")
    xs, ys = [probit(a) for a in in_distribution], [probit(a) for a in shifted]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the reference models' in-distribution accuracies are all equal; no line fits them")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return ProbitFit(slope, intercept, 1.0 - ss_res / ss_tot if ss_tot > 0 else None, n)


def effective_robustness(fit: ProbitFit, in_distribution: float, shifted: float) -> tuple[float, float]:
    """(effective robustness, probit residual) of a model: shifted accuracy minus the fit's prediction at
    its in-distribution accuracy (Taori et al. 2020), and the same difference on the probit axis."""
    return shifted - fit.predicted(in_distribution), probit(shifted) - fit.predicted_probit(in_distribution)


# ---------------------------------------------------------------------------------------------
# options


def parse_shifted_data(value: Any) -> tuple[str, ...]:
    """Registered datasets, each ``NAME`` or ``NAME:/dir`` (validated before any work)."""
    specs = items(value, "--shifted-data")
    for spec in specs:
        DATASETS.entry(spec.partition(":")[0])
    return tuple(dict.fromkeys(specs))


def parse_reference(value: Any) -> tuple[str, ...]:
    """``zoo``, ``none`` or checkpoints (``zoo`` may be combined with checkpoints)."""
    specs = items(value, "--reference")
    if NONE in specs and len(specs) > 1:
        raise UserError("--reference none cannot be combined with models")
    return tuple(dict.fromkeys(s if s in (ZOO, NONE) else parse_checkpoint(s) for s in specs))


SHIFTED_DATA = Flag("shifted_data", "natural-shift test sets with the evaluated data's classes, NAME or NAME:/dir, "
                    "comma-separated (default: the dataset's own, e.g. fashion-mnist-rescaled,fashion-mnist-sketch)",
                    parse_shifted_data, metavar="SETS")
REFERENCE = Flag("reference", "reference models of the effective-robustness fit: zoo (the zoo's models trained on "
                 "the same dataset), none, or comma-separated checkpoints (evaluated first when needed)",
                 parse_reference, metavar="MODELS")


@dataclass(frozen=True, kw_only=True)
class NaturalOptions(AdaptOptions):
    """The shifted test sets, the reference models of the effective-robustness fit, and the test-time
    adaptation (if any) measured next to the unadapted accuracies."""

    shifted_data: tuple[str, ...] | None = None
    reference: tuple[str, ...] = (ZOO,)
    FLAGS = (SHIFTED_DATA, REFERENCE, *ADAPT_FLAGS)


def shifted_specs(opts: NaturalOptions, data_name: str) -> tuple[str, ...]:
    """The sets asked for, else the dataset's own natural-shift sets; none is a one-line error."""
    specs = opts.shifted_data or NATURAL_SHIFTS.get(data_name, ())
    if not specs:
        raise UserError(f"the natural suite needs --shifted-data NAME[:DIR],... for {data_name} (test sets with its "
                        "classes, e.g. cifar10.1:/data/cifar10.1 or imagenet-v2:/data/imagenetv2)")
    return tuple(specs)


def zoo_references(data_name: str) -> list[str]:
    """``zoo:NAME`` of every zoo checkpoint trained on ``data_name``, by name."""
    root = zoo_dir()
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if (entry / "model.safetensors").exists() and (entry / "model.json").exists() \
                and read_card(entry).dataset == data_name:
            found.append(f"zoo:{entry.name}")
    return found


def reference_checkpoints(opts: NaturalOptions, data_name: str) -> list[str]:
    out: list[str] = []
    for spec in opts.reference:
        if spec == ZOO:
            out += zoo_references(data_name)
        elif spec != NONE:
            out.append(spec)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------------------------
# tasks


@dataclass(frozen=True)
class ShiftedSet:
    """One shifted test set as evaluated: its spec, images, cell identity and class alignment."""

    spec: str
    data: ImageDataset
    cell: NaturalShiftCell
    alignment: ClassAlignment
    root: Path | None


def load_shifted(ctx: EvalContext, spec: str) -> ShiftedSet:
    """The set ``spec`` ("NAME" or "NAME:/dir") at the evaluated data's size, its first ``--limit`` images,
    checked against the model's image shape and classes, and identified by its content."""
    name, _, root_text = spec.partition(":")
    root = Path(root_text).expanduser() if root_text else \
        (ctx.data_root if DERIVED_FROM.get(name) == ctx.data_name else None)
    info = ctx.data.info
    data = load_dataset(name, "test", root=root, image_size=info.image_size[0],
                        extra={"channels": str(info.channels)}, limit=ctx.run.limit)
    got = data.info
    if got.channels != info.channels or tuple(got.image_size) != tuple(info.image_size):
        raise UserError(f"{name} has {got.channels}-channel {got.image_size[0]}×{got.image_size[1]} images, but "
                        f"{ctx.data_name} (the model's test set) has {info.channels}-channel "
                        f"{info.image_size[0]}×{info.image_size[1]} ones")
    alignment = align_classes(got, info.class_names, name)
    content = identify(data, name, "test", ctx.run.limit, ctx.store).content
    return ShiftedSet(spec, data, NaturalShiftCell(name, content), alignment, root)


def restricted_result(shifted: ShiftedSet, logits: torch.Tensor, labels: torch.Tensor) -> TaskResult:
    """Accuracy, NLL, Brier and ECE of logits on the shifted set (over its classes only when it covers a subset)."""
    logits, labels = shifted.alignment.restrict(logits, labels)
    result = classification_result(logits, labels)
    result.metrics["classes"] = float(logits.shape[1])
    return result


def natural_result(ctx: EvalContext, shifted: ShiftedSet) -> TaskResult:
    out = forward(ctx, shifted.data)
    assert out.logits is not None
    return restricted_result(shifted, out.logits, out.labels)


def build_natural(ctx: EvalContext, opts: NaturalOptions) -> list[Task]:
    tasks = build_clean(ctx, NoOptions())  # the in-distribution accuracy: the clean suite's own cell
    adapt = adaptation(opts)
    tasks += adapted_tasks(ctx, adapt, SUITE, [None], lambda c, logits, labels: classification_result(logits, labels))
    for spec in shifted_specs(opts, ctx.data_name):
        shifted = load_shifted(ctx, spec)  # missing or mismatched sets fail before any work
        subset = shifted.alignment.class_subset
        params = {"shifted_data": shifted.cell.shifted, "root": str(shifted.root) if shifted.root else None,
                  "source": shifted.data.describe(), "limit": ctx.run.limit, "n": len(shifted.data),
                  "class_subset": list(subset) if subset is not None else None}
        tasks.append(Task(shifted.cell, params, functools.partial(natural_result, shifted=shifted)))
        if adapt is not None:
            cell = adapted_cell(shifted.cell, adapt)
            run = adapted_runner(adapt, None, (cell.key(), shifted.data), scorer(shifted))
            tasks.append(Task(cell, {**params, **adapted_params(ctx, adapt)}, run))
    return tasks


def scorer(shifted: ShiftedSet) -> Callable[[EvalContext, torch.Tensor, torch.Tensor], TaskResult]:
    def score(ctx: EvalContext, logits: torch.Tensor, labels: torch.Tensor) -> TaskResult:
        return restricted_result(shifted, logits, labels)

    return score


def adapted_cell(cell: NaturalShiftCell, adapt: Adaptation) -> AdaptedNaturalCell:
    return AdaptedNaturalCell(cell.shifted, cell.content, *adapt.setting.fields())


# ---------------------------------------------------------------------------------------------
# summary


def accuracy_of(rows: list[TaskRow], identity: TaskIdentity) -> tuple[float, float] | None:
    """(accuracy, n) of the row of ``identity`` among ``rows``."""
    for row in rows:
        if row.id.task == identity and "accuracy" in row.metrics:
            return float(row.metrics["accuracy"]), float(row.metrics.get("n", 0.0))
    return None


def model_rows(ctx: EvalContext, fingerprint: str) -> list[TaskRow]:
    """A model's clean and natural rows on this data and seed."""
    return [row for suite in ("clean", SUITE) for row in
            ctx.store.tasks(fingerprint, dataset=ctx.dataset, suite=suite, seed=ctx.run.seed, summaries=False,
                            with_artifacts=False)]


@dataclass(frozen=True)
class Reference:
    """A reference model of the fit: how it was named, its fingerprint and name, and its stored rows."""

    checkpoint: str
    fingerprint: str
    name: str
    rows: list[TaskRow]


def references(ctx: EvalContext, opts: NaturalOptions) -> list[Reference]:
    """The reference models other than the evaluated one, with their stored rows."""
    names = {m.fingerprint: m.name for m in ctx.store.models()}
    out: list[Reference] = []
    for checkpoint in reference_checkpoints(opts, ctx.data_name):
        fp = evaluated_fingerprint(checkpoint, ctx.run)
        if fp != ctx.fingerprint and fp not in {r.fingerprint for r in out}:
            out.append(Reference(checkpoint, fp, names.get(fp) or checkpoint, model_rows(ctx, fp)))
    return out


def set_keys(cells: list[NaturalShiftCell]) -> dict[NaturalShiftCell, str]:
    """The metric suffix of each set: its name, with its content prefix when two cells share a name."""
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.shifted] = counts.get(cell.shifted, 0) + 1
    return {c: c.shifted if counts[c.shifted] == 1 else f"{c.shifted}@{c.content[:8]}" for c in cells}


def fit_for(ctx: EvalContext, cell: NaturalShiftCell, mine: tuple[float, float] | None,
            in_dist: tuple[float, float], refs: list[Reference], key: str,
            metrics: dict[str, float]) -> tuple[dict[str, Any], ProbitFit | None]:
    """One set's fit over the reference models and the evaluated model's place against it (written into
    ``metrics``): the artifact that documents it, and the fit (None when there is none)."""
    found = [(ref, accuracy_of(ref.rows, CleanCell()), accuracy_of(ref.rows, cell)) for ref in refs]
    pairs = [(ref, ref_id, ref_shift) for ref, ref_id, ref_shift in found if ref_id is not None and ref_shift is not None]
    points = [{"name": ref.name, "fingerprint": ref.fingerprint, "checkpoint": ref.checkpoint,
               "in_distribution_accuracy": ref_id[0], "shifted_accuracy": ref_shift[0],
               "n_in_distribution": ref_id[1], "n_shifted": ref_shift[1]} for ref, ref_id, ref_shift in pairs]
    info: dict[str, Any] = {"shifted_data": cell.shifted, "content": cell.content, "reference": points,
                            "without_rows": [r.name for r in refs if r.fingerprint not in
                                             {p["fingerprint"] for p in points}]}
    if mine is not None:
        info["model"] = {"in_distribution_accuracy": in_dist[0], "shifted_accuracy": mine[0]}
    metrics[f"reference_models/{key}"] = float(len(points))
    if not refs:
        info["missing"] = ("no reference models (--reference none, or no zoo model is trained on this dataset): pass "
                           "--reference with checkpoints to fit effective robustness against")
        return info, None
    if len(points) < MIN_REFERENCES:
        info["missing"] = (f"{len(points)} of the {len(refs)} reference models have rows on {cell.shifted} with this "
                           f"data and seed; the fit needs {MIN_REFERENCES}")
        return info, None
    xs = [clip_accuracy(*ref_id) for _, ref_id, _ in pairs]
    ys = [clip_accuracy(*ref_shift) for _, _, ref_shift in pairs]
    try:
        fit = probit_fit(xs, ys)
    except ValueError as exc:
        info["missing"] = str(exc)
        return info, None
    info.update({"slope": fit.slope, "intercept": fit.intercept, "r2": fit.r2})
    metrics[f"fit_slope/{key}"], metrics[f"fit_intercept/{key}"] = fit.slope, fit.intercept
    if fit.r2 is not None:
        metrics[f"fit_r2/{key}"] = fit.r2
    if mine is not None:
        er, residual = effective_robustness(fit, clip_accuracy(*in_dist), clip_accuracy(*mine))
        metrics[f"effective_robustness/{key}"], metrics[f"probit_residual/{key}"] = er, residual
        info["model"].update({"effective_robustness": er, "probit_residual": residual,
                              "predicted_shifted_accuracy": fit.predicted(clip_accuracy(*in_dist))})
    return info, fit


def summarize_natural(ctx: EvalContext, opts: NaturalOptions,
                      rows: list[TaskRow]) -> list[tuple[TaskIdentity, TaskResult]]:
    """Shifted accuracy, the drop from in-distribution accuracy, and the fit and effective robustness per set."""
    cells = [load_shifted(ctx, spec).cell for spec in shifted_specs(opts, ctx.data_name)]
    mine_rows = model_rows(ctx, ctx.fingerprint)
    in_dist = accuracy_of(mine_rows, CleanCell())
    if in_dist is None or not any(accuracy_of(rows, cell) for cell in cells):
        return []
    metrics: dict[str, float] = {"in_distribution_accuracy": in_dist[0]}
    refs = references(ctx, opts)
    fits: dict[str, Any] = {}
    lines: dict[str, ProbitFit] = {}
    keys = set_keys(cells)
    for cell, key in keys.items():
        mine = accuracy_of(rows, cell)
        if mine is not None:
            metrics[f"shifted_accuracy/{key}"] = mine[0]
            metrics[f"accuracy_drop/{key}"] = in_dist[0] - mine[0]
        fits[key], line = fit_for(ctx, cell, mine, in_dist, refs, key, metrics)
        if line is not None:
            lines[key] = line
    protocol = {
        "reference": list(opts.reference), "reference_models": [r.name for r in refs], "seed": ctx.run.seed,
        "definition": ("fit: least squares of probit(shifted accuracy) on probit(in-distribution accuracy) over the "
                       "reference models (the evaluated model left out), accuracies clipped to [1/(2n), 1 - 1/(2n)]; "
                       "effective robustness = shifted accuracy - Phi(slope * probit(in-distribution accuracy) + "
                       "intercept); probit residual = the same difference on the probit axis (Taori et al. 2020, "
                       "arXiv:2007.00644; Miller et al. 2021, arXiv:2107.04649)"),
        "min_reference_models": MIN_REFERENCES,
    }
    return [(Summary(SUITE), TaskResult(metrics, {"fits": fits, "protocol": protocol})),
            *adapted_natural_summaries(rows, keys, metrics, lines)]


def adapted_natural_summaries(rows: list[TaskRow], keys: dict[NaturalShiftCell, str], source: dict[str, float],
                              lines: dict[str, ProbitFit]) -> list[tuple[TaskIdentity, TaskResult]]:
    """Per adaptation setting stored: the adapted in-distribution and shifted accuracies, the gain over the
    unadapted model on each set, and the adapted model's effective robustness against the same fit."""
    settings = {row.id.task.setting() for row in rows if isinstance(row.id.task, AdaptedNaturalCell)}
    out: list[tuple[TaskIdentity, TaskResult]] = []
    for setting in sorted(settings, key=lambda st: st.label()):
        in_dist = accuracy_of(rows, AdaptedCell(SUITE, None, None, None, *setting.fields()))
        metrics: dict[str, float] = {}
        if in_dist is not None:
            metrics["in_distribution_accuracy"] = in_dist[0]
        for cell, key in keys.items():
            mine = accuracy_of(rows, AdaptedNaturalCell(cell.shifted, cell.content, *setting.fields()))
            if mine is None:
                continue
            metrics[f"shifted_accuracy/{key}"] = mine[0]
            if f"shifted_accuracy/{key}" in source:
                metrics[f"adaptation_gain/{key}"] = mine[0] - source[f"shifted_accuracy/{key}"]
            if key in lines and in_dist is not None:
                er, residual = effective_robustness(lines[key], clip_accuracy(*in_dist), clip_accuracy(*mine))
                metrics[f"effective_robustness/{key}"], metrics[f"probit_residual/{key}"] = er, residual
        if metrics:
            out.append((AdaptedSummary(SUITE, None, *setting.fields()),
                        TaskResult(metrics, {"protocol": {"setting": setting.label(),
                                                          "fit": "the unadapted summary's fit of each set"}})))
    return out


def natural_prerequisites(opts: NaturalOptions, data_name: str) -> list[Prerequisite]:
    """Every reference model's in-distribution and shifted accuracies, evaluated first when missing."""
    specs = shifted_specs(opts, data_name)
    return [Prerequisite(ref, (SUITE,), {"shifted_data": specs, "reference": NONE})
            for ref in reference_checkpoints(opts, data_name)]


SUITES.add(SUITE, Suite(SUITE, "accuracy on natural-shift test sets (same classes) and effective robustness against "
                               "a probit-linear fit over reference models", NaturalOptions, build_natural,
                        summarize_natural, natural_prerequisites),
           SuiteMeta(("Taori et al. 2020, arXiv:2007.00644", "Miller et al. 2021, arXiv:2107.04649")))
