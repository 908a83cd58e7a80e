"""Test-time adaptation (``shiftlab.adapt`` and ``--adapt`` on the corruptions and calibration suites), on
real Fashion-MNIST with the zoo's ERM model (small-cnn with BatchNorm2d and BatchNorm1d)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from shiftlab.adapt import ADAPTERS, adapter_args
from shiftlab.adapt.norm import PriorBatchNorm, grouped, norm_affine_parameters, with_prior_batchnorm
from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.errors import UserError
from shiftlab.core.identity import (
    AdaptedCell,
    AdaptedSummary,
    CalibrationCell,
    CorruptionCell,
    Summary,
    decode,
)
from shiftlab.core.seeding import ImageStreams
from shiftlab.data import load_dataset
from shiftlab.evaluation import RunOptions, load_subject, make_context, run_suites, suite_requests
from shiftlab.evaluation.corrupted import corrupt_block
from shiftlab.models import load_model
from shiftlab.store import Store

pytestmark = pytest.mark.usefixtures("single_thread")
ERM = "zoo:erm"


@pytest.fixture(scope="module")
def erm():
    model, _ = load_model(ERM)
    return model


@pytest.fixture(scope="module")
def noisy():
    """192 test images under Gaussian noise at severity 5 (three batches of 64), with their labels."""
    x, y = load_dataset("fashion-mnist", "test", limit=192).get_batch(torch.arange(192))
    cell = CorruptionCell("gaussian_noise", 5, "cifar")
    return corrupt_block(cell, x, 0, 0), y


def state(model: nn.Module) -> tuple[dict[str, torch.Tensor], bool, dict[str, bool]]:
    return ({k: v.clone() for k, v in model.state_dict().items()}, model.training,
            {n: p.requires_grad for n, p in model.named_parameters()})


def assert_same(model: nn.Module, before: tuple[dict[str, torch.Tensor], bool, dict[str, bool]]) -> None:
    tensors, training, flags = before
    now = model.state_dict()
    assert now.keys() == tensors.keys()
    assert all(torch.equal(now[k], tensors[k]) and now[k].dtype == tensors[k].dtype for k in tensors)
    assert model.training == training
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())


def streams(n: int, start: int = 0) -> ImageStreams:
    return ImageStreams.for_images(0, "test-adapt", torch.arange(start, start + n))


# ---- the adapters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_every_adapter_leaves_the_callers_model_bit_identical(name, noisy):
    model, _ = load_model(ERM)
    model.train()  # an unusual caller state: it must come back exactly as it was
    model.model.classifier.weight.requires_grad_(False)
    before = state(model)
    adapter = adapter_args(name, {"copies": 4} if name in ("sita", "memo") else {}).prepare(model)
    x = noisy[0][:8]
    for _ in range(2):
        out = adapter.step(x, streams(len(x)))
        assert out.shape == (8, 10) and torch.isfinite(out).all()
    adapter.reset()
    assert_same(model, before)
    meta = ADAPTERS.meta(name)
    assert meta.paper and re.fullmatch(r"\d{4}\.\d{5}", meta.arxiv) and meta.modes


def test_adapting_on_clean_data_changes_accuracy_by_less_than_1pp_at_batch_128(erm):
    """Schneider et al. 2020 and Wang et al. 2021: on in-distribution data adaptation costs little (TENT
    about 0.7 pp on the ERM zoo model); 2,048 clean test images in 16 batches of 128."""
    x, y = load_dataset("fashion-mnist", "test", limit=2048).get_batch(torch.arange(2048))
    with torch.inference_mode():
        source = (erm(x).argmax(1) == y).float().mean().item()
    for name in ("bn-adapt", "tent"):
        adapter = adapter_args(name).prepare(erm)
        logits = torch.cat([adapter.step(x[i:i + 128]) for i in range(0, 2048, 128)])
        accuracy = (logits.argmax(1) == y).float().mean().item()
        assert abs(accuracy - source) < 0.01, (name, source, accuracy)


def test_adaptation_lowers_error_under_noise(erm, noisy):
    """The direction of the literature on a BatchNorm model (source → BN → TENT), on 192 noisy images."""
    x, y = noisy
    with torch.inference_mode():
        source = (erm(x).argmax(1) != y).float().mean().item()
    errors = {}
    for name in ("bn-adapt", "tent"):
        adapter = adapter_args(name).prepare(erm)
        logits = torch.cat([adapter.step(x[i:i + 64]) for i in range(0, 192, 64)])
        errors[name] = (logits.argmax(1) != y).float().mean().item()
    assert errors["bn-adapt"] < source and errors["tent"] < source, (source, errors)


def test_online_tent_with_zero_lr_equals_bn_adaptation(erm, noisy):
    x = noisy[0]
    bn, frozen, tent = (adapter_args(n, a).prepare(erm) for n, a in
                        (("bn-adapt", {}), ("tent", {"lr": "0"}), ("tent", {"lr": "0.01"})))
    for i in range(3):
        batch = x[64 * i:64 * (i + 1)]
        expected, adapted = bn.step(batch), tent.step(batch)
        assert torch.equal(frozen.step(batch), expected)
        # TENT predicts with the forward that computes its loss: the first batch is BN adaptation, the
        # later ones see the parameters the earlier batches adapted
        assert torch.equal(adapted, expected) if i == 0 else not torch.allclose(adapted, expected, atol=1e-4)


def test_episodic_mode_gives_batch_order_independent_results(erm, noisy):
    x = noisy[0]
    batches = [x[64 * i:64 * (i + 1)] for i in range(3)]

    def run(order: list[int], episodic: bool) -> dict[int, torch.Tensor]:
        adapter = adapter_args("tent", {"lr": "0.01"}).prepare(erm)
        out = {}
        for i in order:
            if episodic:
                adapter.reset()
            out[i] = adapter.step(batches[i])
        return out

    forward, backward = run([0, 1, 2], True), run([2, 1, 0], True)
    assert all(torch.equal(forward[i], backward[i]) for i in range(3))
    online_forward, online_backward = run([0, 1, 2], False), run([2, 1, 0], False)
    assert not torch.allclose(online_forward[2], online_backward[2], atol=1e-4)  # online state carries over


@pytest.mark.parametrize("name", ["sita", "memo"])
def test_single_image_adapters_run_on_single_images(name, erm, noisy):
    x = noisy[0][:6]
    adapter = adapter_args(name, {"copies": "8"}).prepare(erm)
    alone = torch.cat([adapter.step(x[i:i + 1], streams(1, i)) for i in range(6)])
    together = adapter.step(x, streams(6))
    assert alone.shape == (6, 10)
    assert torch.allclose(alone, together, atol=1e-4)  # an image's result does not depend on its batch
    assert torch.equal(adapter.step(x[:1], streams(1)), adapter.step(x[:1], streams(1)))  # seeded, stateless
    other = ImageStreams.for_images(1, "test-adapt", torch.arange(1))
    assert not torch.allclose(adapter.step(x[:1], streams(1)), adapter.step(x[:1], other), atol=1e-5)
    with torch.inference_mode():
        assert not torch.allclose(alone, erm(x), atol=1e-3)  # it adapted


def test_prior_batchnorm_follows_schneider_et_al():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    bn.weight.data.normal_()
    bn.bias.data.normal_()
    x = torch.randn(8, 3, 5, 5) * 2 + 1
    for prior in (0.0, 4.0, 1e9):
        layer = PriorBatchNorm(bn, prior)
        w = prior / (prior + 8)
        mean = w * bn.running_mean + (1 - w) * x.mean((0, 2, 3))
        var = w * bn.running_var + (1 - w) * x.var((0, 2, 3), unbiased=False)
        expected = (x - mean.view(1, -1, 1, 1)) / torch.sqrt(var.view(1, -1, 1, 1) + bn.eps)
        expected = expected * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
        assert torch.allclose(layer(x), expected, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(PriorBatchNorm(bn, 1e9)(x), bn(x), atol=1e-4)  # N → ∞: the source statistics
    layer = PriorBatchNorm(bn, 4.0)
    with grouped([layer], 2):
        halves = layer(x)
    assert torch.allclose(halves, torch.cat([layer(x[:4]), layer(x[4:])]), atol=1e-6)


def test_tent_adapts_layernorm_and_groupnorm_affine_parameters():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.LayerNorm(4 * 26 * 26),
                        nn.Linear(4 * 26 * 26, 10)).eval()
    before = state(net)
    adapter = adapter_args("tent", {"lr": "0.05"}).prepare(net)
    params = norm_affine_parameters(adapter.model)  # type: ignore[attr-defined]
    assert len(params) == 4 and all(p.requires_grad for p in params)
    assert sum(p.requires_grad for p in adapter.model.parameters()) == 4  # type: ignore[attr-defined]
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    adapter.step(x)
    adapted = adapter.model  # type: ignore[attr-defined]
    assert not torch.equal(adapted[1].weight, net[1].weight) and not torch.equal(adapted[3].bias, net[3].bias)
    assert torch.equal(adapted[0].weight, net[0].weight)  # everything else is frozen
    assert_same(net, before)
    with pytest.raises(UserError, match="BatchNorm"):
        adapter_args("bn-adapt").prepare(net)
    with pytest.raises(UserError, match="affine"):
        adapter_args("tent").prepare(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)))
    assert with_prior_batchnorm(nn.Sequential(nn.Linear(2, 2)), 0.0) == []


def test_adapter_arguments_are_typed_and_validated():
    args = adapter_args("tent", {"lr": "5e-4", "steps": "2"})
    assert args.items() == (("lr", 0.0005), ("steps", 2)) and isinstance(args.items()[1][1], int)
    assert adapter_args("memo").items() == (("copies", 32), ("lr", 0.005), ("prior", 16.0), ("steps", 1))
    for bad in ({"lr": "fast"}, {"lr": "-1"}, {"steps": "0"}, {"steps": "1.5"}, {"momentum": "0.9"},
                {"lr": "nan"}, {"lr": True}):
        with pytest.raises(UserError):
            adapter_args("tent", bad)
    with pytest.raises(UserError, match="unknown adapter"):
        adapter_args("tnet")


@pytest.mark.parametrize("options", [
    {"adapt": "tnet"}, {"adapt_arg": "lr=0.1"}, {"adapt": "tent", "adapt_arg": "lr"},
    {"adapt": "tent", "adapt_arg": "lr=-1"}, {"adapt": "tent", "adapt_arg": ["lr=1", "lr=2"]},
    {"adapt": "sita", "adapt_batch_size": "8"}, {"adapt": "sita", "adapt_mode": "online"},
    {"adapt": "tent", "adapt_mode": "sometimes"}, {"adapt": "tent", "adapt_batch_size": "0"},
])
def test_bad_adaptation_options_fail_before_any_work(tmp_path, options):
    with pytest.raises(UserError):
        evaluate_model(ERM, ["corruptions"], store=tmp_path / "s.db", options=options, limit=10, device="cpu")
    assert not (tmp_path / "s.db").exists()


def test_adapted_identities_round_trip_and_say_what_determines_them():
    cell = AdaptedCell("corruptions", "fog", 5, "cifar", "tent", (("lr", 0.001), ("steps", 1)), 128, "online", "index")
    clean = AdaptedCell("calibration", None, None, None, "sita", (("copies", 31), ("prior", 16.0)), 1, "episodic", None)
    summary = AdaptedSummary("corruptions", "cifar", "tent", (("lr", 0.001), ("steps", 1)), 128, "online", "index")
    for identity in (cell, clean, summary):
        assert decode(identity.key()) == identity and identity.columns().suite == identity.suite
    assert cell.key() == "adapted/corruptions/fog/5/cifar/tent/lr=0.001,steps=1/128/online/index"
    assert cell.shift() == CorruptionCell("fog", 5, "cifar") and summary.columns().is_summary
    assert cell.setting() == summary.setting() and "batch 128" in cell.label()
    for bad in (("fog", None, "cifar", 128, "online", "index"), ("fog", 5, "cifar", 128, "online", None),
                ("fog", 5, "cifar", 128, "episodic", "index"), ("fog", 5, "cifar", 0, "episodic", None)):
        corruption, severity, table, batch, mode, order = bad
        with pytest.raises(ValueError):
            AdaptedCell("corruptions", corruption, severity, table, "tent", (), batch, mode, order)


# ---- the suites --------------------------------------------------------------------------------------------

NAMES = ("gaussian_noise", "contrast")
OPTIONS = {"corruptions": ",".join(NAMES), "severities": "5"}


@pytest.fixture(scope="module")
def adapted_store(tmp_path_factory):
    """The corruptions and calibration suites with and without bn-adapt (256 images, batches of 100)."""
    path = tmp_path_factory.mktemp("adapt") / "s.db"
    subject = load_subject(ERM, RunOptions(limit=256, batch_size=100, device="cpu"))
    before = state(subject.model)
    with Store(path) as store:
        ctx = make_context(subject, store)
        report = run_suites(ctx, suite_requests(["corruptions", "calibration"],
                                                {**OPTIONS, "adapt": "bn-adapt", "adapt_batch_size": "64"}))
    return path, subject, before, report


def test_suite_stores_adapted_rows_next_to_unadapted_ones(adapted_store):
    _, subject, before, report = adapted_store
    assert_same(subject.model, before)  # the evaluated model is bit-identical after the evaluation
    rows = {r.id.task: r for r in report.rows}
    setting = ((("prior", 0.0),), 64, "episodic", None)
    for name in NAMES:
        source = rows[CorruptionCell(name, 5, "cifar")]
        adapted = rows[AdaptedCell("corruptions", name, 5, "cifar", "bn-adapt", *setting)]
        assert adapted.params["batch_size"] == 64 and adapted.params["paper"].startswith("Schneider et al. 2020")
        assert adapted.metrics["seconds_per_image"] > 0 and adapted.metrics["n"] == 256
        # the adapted accuracy is bn-adapt's on exactly the suite's corrupted images, in batches of 64
        x, y = load_dataset("fashion-mnist", "test", limit=256).get_batch(torch.arange(256))
        xc = corrupt_block(CorruptionCell(name, 5, "cifar"), x, 0, 0)
        adapter = adapter_args("bn-adapt").prepare(subject.model)
        correct = sum(int((adapter.step(xc[i:i + 64]).argmax(1) == y[i:i + 64]).sum()) for i in range(0, 256, 64))
        assert adapted.metrics["accuracy"] == pytest.approx(correct / 256)
        assert adapted.metrics["accuracy"] != source.metrics["accuracy"]
        calibrated = rows[AdaptedCell("calibration", name, 5, "cifar", "bn-adapt", *setting)]
        assert calibrated.metrics["accuracy"] == adapted.metrics["accuracy"] and "ece_ts" in calibrated.metrics
    assert AdaptedCell("calibration", None, None, None, "bn-adapt", *setting) in rows
    # the suite's summary keeps summarising the unadapted cells; each setting has its own
    summary = rows[Summary("corruptions", "cifar")]
    unadapted = [rows[CorruptionCell(n, 5, "cifar")].metrics["error"] for n in NAMES]
    assert summary.metrics["mean_corruption_error"] == pytest.approx(sum(unadapted) / 2)
    own = rows[AdaptedSummary("corruptions", "cifar", "bn-adapt", *setting)]
    errors = [rows[AdaptedCell("corruptions", n, 5, "cifar", "bn-adapt", *setting)].metrics["error"] for n in NAMES]
    assert own.metrics["mean_corruption_error"] == pytest.approx(sum(errors) / 2)
    assert own.metrics["unadapted_mean_corruption_error"] == pytest.approx(sum(unadapted) / 2)
    assert "ece/all" in own.metrics and "ece/unadapted" in own.metrics
    assert AdaptedSummary("calibration", "cifar", "bn-adapt", *setting) in rows
    calibration = rows[Summary("calibration", "cifar")]
    assert calibration.metrics["accuracy/all"] == pytest.approx(
        sum(rows[CalibrationCell(n, 5, "cifar")].metrics["accuracy"] for n in NAMES) / 2)


def test_suite_resumes_without_recomputing(adapted_store):
    path = adapted_store[0]
    options = {**OPTIONS, "adapt": "bn-adapt", "adapt_batch_size": "64"}
    again = evaluate_model(ERM, ["corruptions", "calibration"], store=path, options=options, limit=256,
                           batch_size=100, device="cpu")
    assert again.ran == []
    other = evaluate_model(ERM, ["corruptions"], store=path, options={**options, "adapt_batch_size": "128"},
                           limit=256, batch_size=100, device="cpu")
    assert sorted(other.ran) == sorted(f"{n} s5 (cifar), adapted: bn-adapt prior=0, episodic, batch 128" for n in NAMES)


def test_adapt_view_shows_error_and_calibration_before_and_after(adapted_store, tmp_path):
    from shiftlab.report import write_report

    with Store(adapted_store[0]) as store:
        site = write_report(store, tmp_path / "site")
    card = next(p for p in site.parent.glob("model-*.html")).read_text()
    section = card[card.index('<section id="adapt">'):]
    section = section[:section.index("</section>")]
    text = re.sub(r"<[^>]+>", " ", section)
    assert "Error, bn-adapt prior=0, episodic, batch 64 (cifar table)" in text
    assert "Calibration, bn-adapt prior=0, episodic, batch 64" in text
    assert text.count("→") >= 2 + 2 + 3 * 2  # two corruption cells, their mean, clean and severity 5 rows
    assert "gaussian_noise" in text and "contrast" in text and "mean corruption error" in text
