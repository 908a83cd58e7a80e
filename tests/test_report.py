"""Report and leaderboard: built from a real run of every suite on Fashion-MNIST (the zoo's ERM model)
plus seeded rows written with typed identities; every page must parse, show no "nan", have no empty
SVG, no duplicate element id and no network reference, and be byte-identical when written twice."""

from __future__ import annotations

import ast
import json
import math
import random
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_rows import ALL_SUITES, DATA_SOURCE, RowWriter, add_model, synthetic_rows

import shiftlab
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CleanCell, CorruptionCell, DatasetIdentity, Summary
from shiftlab.core.quantities import Quantity
from shiftlab.core.registry import Registry
from shiftlab.report import FORMATS, leaderboard_table, load_leaderboard, write_report
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import gather
from shiftlab.report.html.blocks import section
from shiftlab.report.html.card import card_filenames, render_card
from shiftlab.report.html.compare import render_compare
from shiftlab.report.html.index import render_index
from shiftlab.report.leaderboard import build_leaderboard
from shiftlab.report.pareto import pareto_front
from shiftlab.report.plots.curves import BudgetCurve, lowest_over_attacks
from shiftlab.report.plots.labels import Box, place_labels
from shiftlab.report.plots.palette import distinct_colors, model_styles
from shiftlab.report.values import Value, wilson_interval
from shiftlab.report.views import VIEWS, SuiteView
from shiftlab.store import Store

REPORT = Path(__file__).resolve().parents[1] / "shiftlab" / "report"
LIMIT = 200
MODELS = [("augmix-cnn", "augmix", 0.86, {}), ("at-cnn", "pgd-at", 0.78, {"masking": True}),
          ("partial-cnn", "erm", 0.9, {})]


class PageParser(HTMLParser):
    """Collects text, svg child counts, element ids, links and tag balance of a page."""

    VOID = {"meta", "input", "br", "img", "link", "hr", "col", "source", "wbr", "area", "base", "embed", "track"}

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.stack: list[str] = []
        self.svgs: list[int] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "svg":
            self.svgs.append(0)
        elif "svg" in self.stack:
            self.svgs[-1] += 1
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag not in self.VOID:
            self.stack.append(tag)
        self.in_script = tag in ("script", "style")

    def handle_startendtag(self, tag, attrs):
        if "svg" in self.stack:
            self.svgs[-1] += 1
        if dict(attrs).get("id"):
            self.ids.append(dict(attrs)["id"])

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> with open {self.stack[-3:]}"
        self.stack.pop()
        self.in_script = False

    def handle_data(self, data):
        if not self.in_script:
            self.text.append(data)


def check_site(out: Path) -> dict[str, PageParser]:
    pages = sorted(out.glob("*.html"))
    assert (out / "index.html") in pages and (out / "compare.html") in pages
    parsed = {}
    for path in pages:
        html = path.read_text(encoding="utf-8")
        parser = PageParser()
        parser.feed(html)
        parser.close()
        assert parser.stack == [], f"{path.name}: unclosed {parser.stack}"
        assert not re.search(r"\bnan\b", " ".join(parser.text), re.IGNORECASE), f"{path.name} shows nan"
        assert not re.search(r"\bnan\b", " ".join(re.findall(r'(?:title|data-value)="([^"]*)"', html)), re.I)
        assert all(n > 0 for n in parser.svgs), f"{path.name} has an empty <svg>"
        duplicates = {i for i in parser.ids if parser.ids.count(i) > 1}
        assert not duplicates, f"{path.name}: duplicate element ids {sorted(duplicates)[:5]}"
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), f"{path.name} references the network"
        for link in parser.links:
            assert (out / link).exists(), f"{path.name} links to missing {link}"
        parsed[path.name] = parser
    return parsed


def card_of(out: Path, name: str) -> str:
    """The card page whose title names model ``name``."""
    cards = [p.read_text() for p in out.glob("model-*.html")]
    found = [c for c in cards if f"Robustness card: {name} on" in c]
    assert len(found) == 1, f"{len(found)} cards for {name}"
    return found[0]


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", html, re.S)


@pytest.fixture(scope="module")
def real_store(tmp_path_factory) -> Path:
    """The zoo's ERM model through every suite (small options), plus three seeded models on the same data."""
    path = tmp_path_factory.mktemp("report") / "store.db"
    run = shiftlab.evaluate("zoo:erm", ["clean", "corruptions", "calibration", "adversarial", "ood"], store=path,
                            limit=LIMIT, device="cpu", corruptions="gaussian_noise,fog", severities=[3, 5],
                            eps="0.05,0.1", attack="fgsm", ood_set="uniform-noise")
    dataset = run.rows[0].id.dataset
    with Store(path) as store:
        source = store.datasets()[dataset.key()][1]
        for k, (name, recipe, quality, extra) in enumerate(MODELS):
            fingerprint = f"{k + 1:02d}" + "ab" * 31
            add_model(store, fingerprint, name, recipe, 100_000 + k)
            synthetic_rows(store, fingerprint, ALL_SUITES if k < 2 else {"clean"}, quality, dataset=dataset,
                           source=source, **extra)
    return path


@pytest.fixture(scope="module")
def site(real_store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    with Store(real_store) as store:
        assert write_report(store, out, "html") == out / "index.html"
    return out


# ---- public API, pages and exports ------------------------------------------------------------------


def test_empty_store_gives_valid_reports(tmp_path):
    with Store(tmp_path / "s.db") as store:
        for fmt in FORMATS:
            write_report(store, tmp_path / "out", fmt)
        assert load_leaderboard(store).evaluations == []
        assert leaderboard_table(load_leaderboard(store))[1] == []
    check_site(tmp_path / "out")
    assert "no evaluated model" in (tmp_path / "out" / "index.html").read_text()
    assert json.loads((tmp_path / "out" / "leaderboard.json").read_text())["rows"] == []


def test_bad_format_and_out_path(tmp_path):
    (tmp_path / "file").write_text("x")
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(UserError, match="html, md, json"):
            write_report(store, tmp_path / "out", "pdf")
        with pytest.raises(UserError, match="is a file"):
            write_report(store, tmp_path / "file", "md")
        with pytest.raises(UserError, match="clean_acc"):
            load_leaderboard(store, "bogus")


def test_real_run_renders_every_suite(real_store, site):
    pages = check_site(site)
    assert len(pages) == 2 + 4
    with Store(real_store) as store:
        board = load_leaderboard(store)
        erm = next(i for i, ev in enumerate(board.evaluations) if ev.label == "small-cnn-erm")
        fp = board.evaluations[erm].fingerprint
        clean = next(r for r in store.tasks(fp) if isinstance(r.id.task, CleanCell))
    assert board.cells[erm]["clean_acc"].value == clean.metrics["accuracy"]
    card = card_of(site, "small-cnn-erm")
    for heading in ("Clean test set", "Common corruptions", "Adversarial robustness", "Calibration",
                    "Out-of-distribution detection"):
        assert f"<h2>{heading}</h2>" in card
        assert "has not been run" not in card.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]
    assert len(svgs(card)) >= 7  # reliability, heatmap, curves, attack curves, reliability x4, ECE, ROC
    assert re.search(r"<td[^>]*>200</td>", card) and "200.0000" not in card  # counts are integers
    assert f"{100 * clean.metrics['accuracy']:.1f}%" in card  # fractions are percentages
    assert "uniform-noise" in card


def test_several_models_colours_and_flags(site):
    index = (site / "index.html").read_text()
    colours = re.findall(r'class="swatch" style="background:(#[0-9a-f]{6})"', index)
    assert len(colours) == 4 and len(set(colours)) == 4
    at_card = card_of(site, "at-cnn")
    assert "gradient masking suspected" in at_card and "<b>FAIL</b>: large_eps_zero" in at_card
    partial = card_of(site, "partial-cnn")
    # every suite but clean: corruptions, adversarial, calibration, ood, certify, spatial, translation,
    # fourier, stability, natural
    assert partial.count("has not been run") == 10
    front = re.findall(r"<p>Non-dominated on the axes at least two models have \((.*?)\): <b>(.*?)</b>(.*?)</p>",
                       (site / "compare.html").read_text())
    assert front, "no overall Pareto front"
    axes, names, rest = front[0]
    assert "clean acc" in axes and "corruption acc" in axes and "mean FP" not in axes  # axes nobody has are left out
    assert names and "partial-cnn" not in names and "Not ranked" in rest and "partial-cnn" in rest


def test_leaderboard_values_sorting_and_provenance(real_store):
    with Store(real_store) as store:
        board = load_leaderboard(store, "clean_acc")
        accs = [c["clean_acc"].value for c in board.cells]
        assert accs == sorted(accs, reverse=True)
        ece = [c["ece"].value for c in load_leaderboard(store, "ece").cells]
        present = [v for v in ece if v is not None]
        assert present == sorted(present) and ece[: len(present)] == present
        assert [ev.label for ev in load_leaderboard(store, "model").evaluations] == \
            ["at-cnn", "augmix-cnn", "partial-cnn", "small-cnn-erm"]
        at = next(i for i, ev in enumerate(board.evaluations) if ev.label == "at-cnn")
        rows = [r for r in store.tasks(board.evaluations[at].fingerprint, suite="adversarial")
                if getattr(r.id.task, "eps", None) == 0.1 and not r.id.task.budgets]
        cell = board.cells[at]["robust_linf_0.1"]
        assert cell.value == min(r.metrics["robust_accuracy"] for r in rows)  # lowest over the attacks
        assert {s.task for s in cell.sources} == {r.id.task for r in rows}
        assert board.cells[at]["mce"].value is None and "baseline" in board.cells[at]["mce"].why
        partial = next(i for i, ev in enumerate(board.evaluations) if ev.label == "partial-cnn")
        assert board.cells[partial]["ood_auroc"].why == "ood suite not run"
        headers, rows_text = leaderboard_table(board)
        assert headers[:4] == ["model", "arch", "recipe", "dataset"] and "clean_acc ↑" in headers
        assert all(len(r) == len(headers) for r in rows_text)
        assert rows_text[0][headers.index("params")].isdigit()  # counts as integers


def test_markdown_and_json_exports(real_store, tmp_path):
    with Store(real_store) as store:
        md = write_report(store, tmp_path, "md").read_text()
        data = json.loads(write_report(store, tmp_path, "json").read_text())
        board = load_leaderboard(store)
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 4 and len({len(re.findall(r"(?<!\\)\|", line)) for line in lines}) == 1
    assert "nan" not in md.lower() and "%" in md
    assert len(data["rows"]) == 4
    for row, ev in zip(data["rows"], board.evaluations, strict=True):
        assert row["dataset"]["content"] == ev.dataset.content and row["dataset"]["source"] == ev.source
        for cell in row["cells"].values():
            assert (cell["value"] is None) == (cell["display"] == "—")
            for src in cell["provenance"]:
                assert set(src) == {"model_fingerprint", "dataset", "task", "task_label", "metric", "seed",
                                    "shiftlab_version"}
                assert src["model_fingerprint"] == row["model"]["fingerprint"]
                assert src["dataset"] == ev.dataset.key()
    clean = data["rows"][0]["cells"]["clean_acc"]
    assert clean["n"] == 200 and len(clean["interval_95"]) == 2
    task = {t["task"]: t for t in data["rows"][0]["tasks"]}[clean["provenance"][0]["task"]]
    assert clean["value"] == task["metrics"]["accuracy"]


def test_report_is_byte_identical_and_ids_unique(real_store, site, tmp_path):
    with Store(real_store) as store:
        write_report(store, tmp_path / "again", "html")
        for fmt in ("md", "json"):
            first = write_report(store, tmp_path / "a", fmt).read_bytes()
            assert write_report(store, tmp_path / "b", fmt).read_bytes() == first
    names = sorted(p.name for p in site.glob("*.html"))
    assert names == sorted(p.name for p in (tmp_path / "again").glob("*.html"))
    for name in names:
        assert (site / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    check_site(site)  # duplicate ids within a page fail here


# ---- layering and side effects (item 1, item 6) ----------------------------------------------------


def test_report_imports_only_store_core_and_itself():
    allowed = ("shiftlab.store", "shiftlab.core", "shiftlab.report")
    for path in REPORT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith("shiftlab") or name.startswith(allowed), f"{path.name} imports {name}"
                assert name.split(".")[0] != "rich", f"{path.name} imports rich"
                assert name != "matplotlib.pyplot", f"{path.name} imports pyplot"
        text = path.read_text()
        assert "matplotlib.use(" not in text and "split_key" not in text and "parse_severity" not in text


def test_writing_a_report_changes_no_global_state(tmp_path):
    with Store(tmp_path / "s.db") as store:
        add_model(store, "cd" * 32, "solo")
        synthetic_rows(store, "cd" * 32, ALL_SUITES, 0.9)
    script = f"""
import sys, matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
import shiftlab.report
from shiftlab.store import Store
assert "matplotlib.figure" not in sys.modules  # the leaderboard alone does not load matplotlib
with Store({str(tmp_path / 's.db')!r}, create=False) as store:
    shiftlab.report.write_report(store, {str(tmp_path / 'out')!r})
loaded = sorted(m for m in sys.modules if m.startswith("shiftlab.") and not m.startswith(
    ("shiftlab.report", "shiftlab.core", "shiftlab.store")))
assert loaded == [], loaded
assert "matplotlib.pyplot" not in sys.modules and "rich" not in sys.modules
assert matplotlib.rcParams._get_backend_or_none() == backend
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_report_modules_are_small():
    sizes = {p.relative_to(REPORT).as_posix(): len(p.read_text().splitlines()) for p in REPORT.rglob("*.py")}
    assert max(sizes.values()) <= 300, sizes


# ---- typed identities: cells of a non-default table (issue 13, defect 3) ---------------------------


def test_cells_of_a_non_default_table_appear_on_the_card(tmp_path):
    """28-px Fashion-MNIST evaluated with the imagenet table: the old report re-parsed severity from the
    key string (``corruptions/fog/5@imagenet``) and dropped these cells from the heatmap and curves."""
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "imagenet-table")
        synthetic_rows(store, "aa" * 32, {"clean", "corruptions"}, 0.9, table="imagenet", default_table=False)
        add_model(store, "bb" * 32, "both-tables")
        synthetic_rows(store, "bb" * 32, {"clean", "corruptions"}, 0.8, table="cifar", default_table=True)
        synthetic_rows(store, "bb" * 32, {"corruptions"}, 0.5, table="imagenet", default_table=False)
        add_model(store, "cc" * 32, "no-summary")
        rows = RowWriter(store, "cc" * 32)
        for severity, accuracy in ((1, 0.8), (5, 0.5)):
            rows.write(CorruptionCell("fog", severity, "tiny"), {"accuracy": accuracy, "n": 200.0})
        board = load_leaderboard(store)
        write_report(store, tmp_path / "out", "html")
        only = next(ev for ev in board.evaluations if ev.label == "imagenet-table")
        cells = [row for cell, row in only.cells(CorruptionCell) if cell.table == "imagenet"]
        both = next(ev for ev in board.evaluations if ev.label == "both-tables")
        cifar_summary = both.find(Summary("corruptions", "cifar"))
    check_site(tmp_path / "out")
    card = card_of(tmp_path / "out", "imagenet-table")
    corruptions = card.split("<h2>Common corruptions</h2>")[1].split("<h2>")[0]
    assert "Parameter table: imagenet" in corruptions and "no accuracy values" not in corruptions
    heatmap = next(s for s in svgs(corruptions) if "severity (1 = mild" in s)
    for row in cells[:5]:  # every stored cell is a number in the heatmap
        assert f">{100 * row.metrics['accuracy']:.0f}<" in heatmap
    assert any("severity (0 = clean)" in s for s in svgs(corruptions))
    i = board.evaluations.index(only)  # no summary says default: the table with the most cells
    assert board.cells[i]["corruption_acc"].value == \
        only.find(Summary("corruptions", "imagenet")).metrics["mean_corruption_accuracy"]
    # the default table's summary (protocol default_table) is the leaderboard's, whatever else is stored
    j = board.evaluations.index(both)
    assert board.cells[j]["corruption_acc"].value == cifar_summary.metrics["mean_corruption_accuracy"]
    k = next(i for i, ev in enumerate(board.evaluations) if ev.label == "no-summary")
    assert board.cells[k]["corruption_acc"].value == pytest.approx(0.65)  # no summary: mean of the cells
    assert len(board.cells[k]["corruption_acc"].sources) == 2
    both_card = card_of(tmp_path / "out", "both-tables")
    assert "Parameter table: cifar (the default for this image size)" in both_card
    assert "Parameter table: imagenet" in both_card
    assert both_card.index("Parameter table: cifar") < both_card.index("Parameter table: imagenet")


def test_ood_set_names_with_slashes_are_kept_whole(tmp_path):
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "folder-ood")
        synthetic_rows(store, "aa" * 32, {"ood"}, 0.9)
        write_report(store, tmp_path / "out", "html")
    card = card_of(tmp_path / "out", "folder-ood")
    assert "image-folder:/data/ood/textures / msp" in card
    assert any("OOD set: image-folder:/data/ood/textures" in s for s in svgs(card))


# ---- one view per suite; unknown suites listed (item 3) --------------------------------------------


def test_views_registry_holds_one_frozen_view_per_suite():
    assert sorted(VIEWS.names()) == ["adapt", "adversarial", "calibration", "certify", "clean", "corruptions",
                                    "fourier", "natural", "ood", "spatial", "stability", "translation"]
    orders = [VIEWS.get(n).order for n in VIEWS.names()]
    assert len(set(orders)) == len(orders)
    with pytest.raises(AttributeError):
        VIEWS.get("clean").order = 0  # type: ignore[misc]
    with pytest.raises(ValueError, match="already registered"):
        VIEWS.add("clean", VIEWS.get("clean"), None)


def test_a_new_view_is_one_registration(tmp_path):
    """A view added to a registry brings its column to the leaderboard and its section to the card."""
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "certified")
        rows = RowWriter(store, "aa" * 32)
        rows.write(CleanCell(), {"accuracy": 0.9, "n": 200.0})
        rows.write(Summary("selective"), {"selective_accuracy": 0.4, "n": 200.0})
        evaluations = gather(store)

    def certified(ev):
        row = next((r for s, r in ev.summaries("selective")), None)
        return ev.value(row, "selective_accuracy", "selective suite not run")

    views = Registry[SuiteView, None]("report view")
    for name in VIEWS.names():
        views.add(name, VIEWS.get(name), None)
    views.add("selective", SuiteView(
        "selective", "Selective prediction", 60,
        lambda evs: [Column("certified", "selective acc", certified, Quantity("fraction", True, (0.0, 1.0)), axis=True)],
        lambda ev, ctx: section("Selective prediction", f"<p>{certified(ev).value}</p>")), None)
    board = build_leaderboard(evaluations, views)
    assert board.column_keys()[-2] == "certified" and board.cells[0]["certified"].value == 0.4
    assert "certified" in [c.key for c in board.axes()]
    card = render_card(board, 0, model_styles(["aa" * 32])["aa" * 32], views)
    assert "<h2>Selective prediction</h2><div class=\"figs\"><p>0.4</p>" in card
    assert "Suite: selective" not in card  # a suite with a view is not listed generically


def test_rows_of_an_unknown_suite_are_listed_not_dropped(tmp_path):
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "has-unknown-suite")
        rows = RowWriter(store, "aa" * 32)
        rows.write(CleanCell(), {"accuracy": 0.9, "n": 200.0})
        rows.write(Summary("selective", "cifar"), {"selective_accuracy": 0.4125, "n": 200.0, "accuracy": 0.5,
                                                 "sanity/radius_positive": float("nan")})
        write_report(store, tmp_path / "out", "html")
    check_site(tmp_path / "out")
    card = card_of(tmp_path / "out", "has-unknown-suite")
    listed = card.split("<h2>Suite: selective</h2>")[1]
    assert "selective summary (cifar)" in listed
    assert ">0.4125<" in listed and ">200<" in listed and ">50.0%<" in listed  # quantities format each metric
    assert ">not applicable<" in listed


# ---- the data a row was computed on (issue 14, item 1) ---------------------------------------------


def test_dataset_identity_and_source_are_shown(tmp_path):
    other = DatasetIdentity("fashion-mnist", "test", 200, "cd" * 32, 200)
    migrated = DatasetIdentity("fashion-mnist", "test", 200, "", 200)
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "same-model")
        synthetic_rows(store, "aa" * 32, {"clean"}, 0.9)
        synthetic_rows(store, "aa" * 32, {"clean"}, 0.5, dataset=other, source="/mnt/other-copy")
        synthetic_rows(store, "aa" * 32, {"clean"}, 0.7, dataset=migrated, source="migrated from schema 1")
        board = load_leaderboard(store, "clean_acc")
        write_report(store, tmp_path / "out", "html")
        md = write_report(store, tmp_path / "out", "md").read_text()
    assert [ev.dataset.content for ev in board.evaluations] == ["ab" * 32, "", "cd" * 32]
    index = (tmp_path / "out" / "index.html").read_text()
    for label, source in (("fashion-mnist[:200] (abababababab)", DATA_SOURCE),
                          ("fashion-mnist[:200] (cdcdcdcdcdcd)", "/mnt/other-copy"),
                          ("fashion-mnist[:200] (unknown)", "migrated from schema 1")):
        assert label in index and label in md
        assert re.search(rf'data-value="{re.escape(label)}" title="[^"]*{re.escape(source)}', index)
    assert len(list((tmp_path / "out").glob("model-*.html"))) == 3
    cards = "".join(p.read_text() for p in (tmp_path / "out").glob("model-*.html"))
    assert "/mnt/other-copy" in cards and "computed before content fingerprints were stored" in cards


# ---- reading the report (issue 14, item 10) --------------------------------------------------------


def test_model_colours_never_repeat(tmp_path):
    assert len(set(distinct_colors(300))) == 300
    styles = model_styles(f"{k:064x}" for k in range(30))
    assert len({s.color for s in styles.values()}) == 30
    with Store(tmp_path / "s.db") as store:
        for k in range(14):  # more models than the 10 colours of the old palette
            fingerprint = f"{k:064x}"
            add_model(store, fingerprint, f"model-{k:02d}")
            synthetic_rows(store, fingerprint, {"clean"}, 0.5 + 0.03 * k)
        board = load_leaderboard(store)
    styles = model_styles(ev.fingerprint for ev in board.evaluations)
    pages = {"index": render_index(board, styles, card_filenames(board)), "compare": render_compare(board, styles)}
    for name, html in pages.items():
        colours = re.findall(r'class="swatch" style="background:(#[0-9a-f]{6})"', html)
        assert len(colours) == 14 and len(set(colours)) == 14, name


def test_place_labels_never_overlap():
    rng = random.Random(0)
    for trial in range(20):
        anchors = [(rng.uniform(0, 80), rng.uniform(0, 60)) for _ in range(12)]  # crowded on purpose
        sizes = [(rng.uniform(20, 60), 10.0) for _ in anchors]
        markers = [Box(x - 4, y - 4, x + 4, y + 4) for x, y in anchors]
        offsets = place_labels(anchors, sizes, markers)
        boxes = [Box(x + dx, y + dy, x + dx + w, y + dy + h)
                 for (x, y), (dx, dy), (w, h) in zip(anchors, offsets, sizes, strict=True)]
        for i, a in enumerate(boxes):
            assert not any(a.overlaps(b) for b in boxes[i + 1:]), trial
            assert not any(a.overlaps(m) for m in markers), trial


def test_pareto_plots_label_only_the_front_and_name_every_point_on_hover(site):
    compare = (site / "compare.html").read_text()
    scatter = next(s for s in svgs(compare) if "clean acc (%)" in s and "corruption acc (%)" in s)
    names = ["small-cnn-erm", "augmix-cnn", "at-cnn"]  # partial-cnn has no corruption accuracy
    titles = re.findall(r"<title>([^<]*)</title>", scatter)
    assert sorted(t.split(":")[0] for t in titles) == sorted(names)
    front = {t.split(":")[0] for t in titles if "(non-dominated)" in t}
    assert front and front != set(names)
    labelled = {n for n in names if re.search(rf">{re.escape(n)}</text>", scatter)}
    assert labelled == front


def test_wilson_interval():
    low, high = wilson_interval(187, 200)
    z = 1.959963984540054
    for bound in (low, high):  # Wilson bounds solve |p̂ − p| = z·sqrt(p(1 − p)/n)
        assert abs(187 / 200 - bound) == pytest.approx(z * math.sqrt(bound * (1 - bound) / 200), rel=1e-9)
    assert wilson_interval(0, 10)[0] == 0.0 and 0.0 < wilson_interval(0, 10)[1] < 0.35
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] > 0.65
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_accuracies_carry_intervals_and_n(site, real_store):
    with Store(real_store) as store:
        board = load_leaderboard(store)
    i = next(i for i, ev in enumerate(board.evaluations) if ev.label == "at-cnn")
    value = board.cells[i]["clean_acc"]
    low, high = wilson_interval(round(value.value * 200), 200)
    assert value.n == 200 and value.interval == (low, high)
    expected = f"95% CI {100 * low:.1f}–{100 * high:.1f}%, n = 200"
    index = (site / "index.html").read_text()
    row = re.search(r'<tr data-fingerprint="02ab[^"]*">(.*?)</tr>', index).group(1)
    assert expected in row  # the leaderboard's hover text
    assert "n = 200" in re.search(r'data-value="[^"]*" title="([^"]*robust[^"]*|[^"]*fgsm[^"]*)"', row).group(1)
    assert f"{100 * value.value:.1f}% ({expected})" in card_of(site, "at-cnn")


def test_models_on_different_data_never_share_a_front(tmp_path):
    other = DatasetIdentity("cifar10", "test", 500, "ef" * 32, 500)
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "strong")
        synthetic_rows(store, "aa" * 32, {"clean", "corruptions"}, 0.95)
        add_model(store, "bb" * 32, "weak")
        synthetic_rows(store, "bb" * 32, {"clean", "corruptions"}, 0.6, dataset=other, source="/data/cifar")
        write_report(store, tmp_path / "out", "html")
    compare = (tmp_path / "out" / "compare.html").read_text()
    groups = compare.split("<h3>On ")[1:]
    assert len(groups) == 2
    for group, name in zip(groups, ("strong", "weak"), strict=True):
        for scatter in svgs(group.split("<h2>")[0]):  # alone on its data, each model is on its own front
            assert re.findall(r"<title>([^:<]*):", scatter) == [name]
            assert "(non-dominated)</title>" in scatter and f">{name}</text>" in scatter


def test_adversarial_curve_over_budgets_with_the_lowest_over_attacks(tmp_path):
    curves = [BudgetCurve("fgsm", "linf", ((0.0, 0.9), (0.05, 0.6), (0.1, 0.4))),
              BudgetCurve("pgd", "linf", ((0.0, 0.9), (0.05, 0.5), (0.1, 0.45)))]
    assert lowest_over_attacks(curves) == [(0.0, 0.9), (0.05, 0.5), (0.1, 0.4)]
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "one-attack")
        synthetic_rows(store, "aa" * 32, {"adversarial"}, 0.9, attacks=("fgsm",), budgets=(0.05, 0.1))
        write_report(store, tmp_path / "out", "html")
    card = card_of(tmp_path / "out", "one-attack")
    curve = next(s for s in svgs(card) if "robust accuracy (%)" in s)
    assert "lowest over attacks" in curve  # drawn (and in the legend) even with one attack
    for tick in (">0<", ">0.05<", ">0.1<"):  # clean at ε = 0, then every stored budget
        assert tick in curve
    assert "ε=1 steps=20" not in curve and "apgd-ce linf ε=1 steps=20" in card  # the sanity run is a check


def test_mce_is_shown_when_stored(tmp_path):
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "with-baseline")
        synthetic_rows(store, "aa" * 32, {"clean", "corruptions"}, 0.9, mean_ce=0.875)
        board = load_leaderboard(store)
        write_report(store, tmp_path / "out", "html")
    assert board.cells[0]["mce"].value == 0.875
    assert ">87.5%<" in (tmp_path / "out" / "index.html").read_text()
    card = card_of(tmp_path / "out", "with-baseline")
    assert "mean_ce ↓" in card and ">87.5%<" in card


def test_a_vacuous_sanity_check_is_not_applicable(tmp_path):
    with Store(tmp_path / "s.db") as store:
        add_model(store, "aa" * 32, "one-budget")
        synthetic_rows(store, "aa" * 32, {"adversarial"}, 0.9, budgets=(0.1,), monotone=float("nan"))
        write_report(store, tmp_path / "out", "html")
    card = card_of(tmp_path / "out", "one-budget")
    assert "<b>not applicable</b>: monotone_in_eps" in card
    assert "<b>pass</b>: monotone_in_eps" not in card and "<b>pass</b>: robust_le_clean" in card


def test_pareto_front_definition():
    values = {"a": [0.9, 0.5], "b": [0.8, 0.6], "c": [0.7, 0.4], "d": [0.9, None]}
    assert pareto_front(values, [True, True]) == {"a", "b"}
    assert pareto_front(values, [True, False]) == {"a", "c"}


def test_missing_values_say_why():
    column = Column("x", "x", lambda ev: Value(None), Quantity("fraction", True))
    assert column.display(Value(None, why="suite not run")) == "—"
    assert column.hover(Value(None, why="suite not run")) == "suite not run"
    checks = Column("c", "c", lambda ev: Value(None), Quantity("check", True))
    assert checks.display(Value(float("nan"))) == "not applicable" and checks.display(Value(0.0)) == "FAIL"


# ---- the pages in a real browser -------------------------------------------------------------------

CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_report_in_headless_chromium(site, tmp_path):
    if shutil.which("chromium") is None or not Path("/usr/bin/chromedriver").exists():
        pytest.skip("Debian chromium / chromium-driver not installed (make apt installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in [*CHROME_ARGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        for page in sorted(site.glob("*.html")):
            driver.get(page.as_uri())
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert severe == [], f"{page.name}: {severe}"
        driver.get((site / "index.html").as_uri())

        def column(key: str) -> list[str]:
            keys = [h.get_attribute("data-key") for h in driver.find_elements(By.CSS_SELECTOR, "#leaderboard th")]
            return [r.find_elements(By.TAG_NAME, "td")[keys.index(key)].get_attribute("data-value")
                    for r in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]

        before = column("model")
        driver.find_element(By.CSS_SELECTOR, '#leaderboard th[data-key="model"]').click()
        after = column("model")
        assert after == sorted(before, key=str.lower) and after != before
        driver.find_element(By.CSS_SELECTOR, '#leaderboard th[data-key="ece"]').click()
        ece = [float(v) for v in column("ece") if v]
        assert ece == sorted(ece)  # lower is better: ascending first
        driver.find_element(By.ID, "filter").send_keys("augmix")
        shown = [r for r in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr") if r.is_displayed()]
        assert len(shown) == 1
        driver.find_element(By.ID, "filter").clear()
        driver.get((site / "compare.html").as_uri())
        titles = driver.find_elements(By.CSS_SELECTOR, "svg g[id$='-point0'] > title")
        assert titles and all(t.get_attribute("textContent") for t in titles)  # hover names reach the DOM
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()
