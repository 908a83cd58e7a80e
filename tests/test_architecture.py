"""The design's structure, checked: no import cycle among shiftlab's modules, the layer contracts of
``make lint`` really fail on a forbidden import, the CLI is split into small modules, and the package
installed from a wheel finds its zoo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm over the module import graph; components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return out


def test_no_import_cycle_anywhere():
    graph = grimp.build_graph("shiftlab", exclude_type_checking_imports=True)
    assert strongly_connected(graph) == []


def test_the_layer_contracts_fail_on_a_forbidden_import(tmp_path):
    """A copy of the package where the report imports the models must break `lint-imports`."""
    copy = tmp_path / "src"
    shutil.copytree(REPO / "shiftlab", copy / "shiftlab", ignore=shutil.ignore_patterns("zoo", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    clean = subprocess.run(lint, cwd=copy, capture_output=True, text=True, env=env)
    assert clean.returncode == 0, clean.stdout[-2000:]
    leak = copy / "shiftlab" / "report" / "leak.py"
    leak.write_text("import shiftlab.models  # noqa: F401\n")
    broken = subprocess.run(lint, cwd=copy, capture_output=True, text=True, env=env)
    assert broken.returncode != 0
    assert "shiftlab.report.leak -> shiftlab.models" in broken.stdout


def test_the_cli_is_small_modules():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / "shiftlab" / "cli").glob("*.py")}
    assert len(sizes) >= 8 and max(sizes.values()) <= 300, sizes


def test_importing_shiftlab_changes_nothing():
    """No backend switch, environment change or heavy import at `import shiftlab`."""
    code = ("import os, sys; before = dict(os.environ); import shiftlab, shiftlab.report;"
            "assert dict(os.environ) == before; assert 'matplotlib.pyplot' not in sys.modules;"
            "assert 'torch' not in sys.modules, 'import shiftlab stays cheap'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.timeout(900)
def test_an_installed_wheel_lists_and_evaluates_its_zoo(tmp_path):
    """Build a wheel, install it (no dependencies) in a fresh virtual environment whose dependencies come
    from this one, and use the zoo from outside the source tree."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    [wheel] = dist.glob("shiftlab-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, str(wheel)],
                   check=True, capture_output=True)
    here = sysconfig.get_paths()["purelib"]  # torch and the other dependencies
    env = {**os.environ, "PYTHONPATH": here, "SHIFTLAB_ZOO": ""}
    env.pop("SHIFTLAB_ZOO")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import shiftlab.models as m; print(m.zoo_dir())"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(site) and (Path(where) / "erm" / "model.safetensors").exists()
    listing = subprocess.run([str(python), "-m", "shiftlab", "zoo", "list"], cwd=work, env={**env, "COLUMNS": "200"},
                             capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    from shiftlab.app.zoo.catalog import ZOO

    shipped = sum((REPO / "shiftlab" / "models" / "zoo" / name / "model.safetensors").exists() for name in ZOO.names())
    assert f"{shipped}/{len(ZOO.names())} checkpoints" in listing.stdout and "pgd-at" in listing.stdout
    evaluated = subprocess.run([str(python), "-m", "shiftlab", "zoo", "evaluate", "--only", "erm", "--limit", "32",
                                "--store", "s.db", "--json"], cwd=work, env=env, capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"name": "erm"' in evaluated.stdout and (work / "s.db").exists()
