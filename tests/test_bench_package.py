"""automl-bench as a package: no import cycle, and ``automl bench`` from installed wheels outside the repository."""

from __future__ import annotations

import ast
import graphlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "plugins" / "automl-bench"
PACKAGE = BENCH / "automl_bench"


def import_graph() -> dict[str, set[str]]:
    """``{module: the automl_bench modules it imports}``, imports inside functions included."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(BENCH).with_suffix("").parts).removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "automl_bench":
                # `from automl_bench import multifidelity` imports a module; a name that is no module, the package.
                found |= {f"{node.module}.{a.name}" if (BENCH / node.module.replace(".", "/") / f"{a.name}.py").is_file()
                          else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "automl_bench"}
        graph[module] = found - {module}
    return graph


def test_automl_bench_has_no_import_cycle_and_base_is_at_the_bottom() -> None:
    graph = import_graph()
    assert "automl_bench.plans" in graph and "automl_bench.leaderboard.render" in graph  # the walk found them
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle
    assert graph["automl_bench.base"] == set()
    assert order.index("automl_bench.base") < order.index("automl_bench.problems") < order.index("automl_bench.suite")


def test_the_cycle_check_catches_a_cycle() -> None:
    graph = import_graph()
    graph["automl_bench.base"] = {"automl_bench.methods"}  # what a function-level import used to hide
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(graph).static_order())


def test_the_command_module_imports_only_click() -> None:
    # automl --help imports it to show the commands' help lines: the benchmark stack waits for a command to run.
    probe = ("import sys, automl_bench.cli; "
             "print(sorted(m for m in ('automl', 'automl.plugin', 'numpy', 'pandas', 'sqlalchemy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _copy_sources(tmp: Path) -> tuple[Path, Path]:
    """The core and automl-bench sources copied out of the checkout, so that building writes nothing into it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "tests")
    core = tmp / "src" / "automl"
    core.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, core / name)
    shutil.copytree(ROOT / "automl", core / "automl", ignore=ignore)
    bench = tmp / "src" / "automl-bench"
    shutil.copytree(BENCH, bench, ignore=ignore)
    return core, bench


def _dependencies_only(tmp: Path) -> Path:
    """A directory of links to this environment's installed libraries, less every automl distribution and
    editable-install hook: the fresh environment sees ray, click, numpy... but only the wheels' automl."""
    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp / "deps"
    deps.mkdir()
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("automl", "__editable__", "fixture")) or name.endswith(".pth"):
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


@pytest.mark.slow
def test_automl_bench_works_from_wheels_in_a_fresh_venv_outside_the_repository(tmp_path: Path) -> None:
    core, bench = _copy_sources(tmp_path)
    wheels = tmp_path / "wheels"
    offline = ["--no-deps", "--no-index", "--no-build-isolation", "--quiet"]  # nothing is downloaded
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", *offline, "-w", str(wheels), str(core), str(bench)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    built = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert built == ["automl", "automl_bench"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "--quiet", *map(str, wheels.glob("*.whl"))],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "repo_dependencies.pth").write_text(f"{_dependencies_only(tmp_path)}\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AUTOML_BENCH_STORE")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"

    def automl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "automl"), *args], cwd=outside, env=env, capture_output=True,
                              text=True, timeout=300)

    where = subprocess.run([str(python), "-c", "import automl, automl_bench; print(automl.__file__); "
                            "print(automl_bench.__file__)"], cwd=outside, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout  # the wheels, not the repo

    top = automl("--help")
    assert top.returncode == 0 and top.stderr == "", top.stderr
    assert "bench " in top.stdout and "leaderboard " in top.stdout
    helped = automl("bench", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "Run a benchmark suite or plan" in helped.stdout and "--methods" in helped.stdout
    board = automl("leaderboard", "--help")
    assert board.returncode == 0 and "Write the searcher leaderboard" in board.stdout, board.stderr
    # The suites and plans are package data of the wheel; the store defaults to the working directory.
    dry = automl("bench", "smoke", "--methods", "random", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("smoke v")
    listed = automl("bench", "--list")
    assert listed.returncode == 0 and "plan nightly:" in listed.stdout and "automl:random" in listed.stdout, listed.stderr
    assert list(outside.iterdir()) == []
