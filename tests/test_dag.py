"""The DAG is exact: every stage depends on its script and every src module that script imports
(transitively, function-level imports included) with the data files of each package it imports
(templates), on no src file it does not need, and on the params and models its names say."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from vaelab.config import load_params, run_config
from vaelab.report import roles

SRC = ROOT / "src"
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def module_file(parts: list[str]) -> Path | None:
    base = SRC.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Project files `path` imports directly (absolute and relative), each package's __init__ too."""
    found = set()
    here = path.parent.relative_to(SRC).parts if SRC in path.parents else ()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(here[: len(here) - (node.level - 1)]) if node.level else []
            full = base + (node.module.split(".") if node.module else [])
            names = [full] + [full + [alias.name] for alias in node.names]
        else:
            continue
        for parts in names:
            if parts and parts[0] == "vaelab":
                found |= {f for i in range(1, len(parts) + 1) if (f := module_file(parts[:i]))}
    return found


def closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        for f in imported_files(todo.pop()) - seen:
            seen.add(f)
            todo.append(f)
    return seen | package_data(seen)


def package_data(files: set[Path]) -> set[Path]:
    """The data files beside each imported package's __init__.py (vaelab/templates/: its Jinja2
    templates and figures.yaml): the package reads them at run time, so whoever imports it depends
    on them too."""
    return {
        data
        for init in files
        if init.name == "__init__.py"
        for data in init.parent.iterdir()
        if data.is_file() and data.suffix not in {".py", ".pyc"} and not data.name.startswith(".")
    }


@pytest.fixture(scope="module")
def stages():
    """Every stage of dvc.yaml as DVC itself resolves it (foreach expanded)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {
            stage.addressing: (
                stage.cmd,
                {str(Path(d.def_path)) for d in stage.deps},
                {str(p) for d in stage.params for p in d.params},
            )
            for stage in repo.index.stages
        }


def test_every_stage_depends_on_exactly_the_modules_its_script_imports(stages):
    assert stages, "dvc.yaml defines no stage"
    for name, (cmd, deps, _) in stages.items():
        script = ROOT / cmd.split()[1]
        needed = {str(f.relative_to(ROOT)) for f in closure(script) | {script}}
        listed = {d for d in deps if d.startswith(("src/", "pipeline/"))}
        assert not needed - listed, f"{name} misses deps {sorted(needed - listed)}"
        assert not listed - needed, (
            f"{name} depends on modules it never imports: {sorted(listed - needed)}"
        )


def test_the_checker_sees_package_data_and_function_level_imports(tmp_path):
    """A package's templates count as its files: a stage importing `vaelab.templates` (or a module
    that does) must depend on every template beside its __init__.py. A lazy import inside a
    function counts too (train imports plots so)."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "page.md.j2").write_text("{{ x }}")
    (tmp_path / ".page.md.j2.swp").write_text("")
    (tmp_path / "s.py").write_text("def f():\n    from vaelab import store\n")
    assert package_data({tmp_path / "__init__.py"}) == {tmp_path / "page.md.j2"}
    assert package_data({tmp_path / "s.py"}) == set()
    assert SRC / "vaelab" / "store.py" in imported_files(tmp_path / "s.py")


@pytest.mark.parametrize("section", ["runs", "sweeps"])
def test_each_run_and_sweep_stage_reads_only_its_own_params_and_data(stages, section):
    """A sweep's stages read no run's params, a run's no sweep's."""
    train, evaluate = (
        ("train", "evaluate") if section == "runs" else ("train_sweep", "evaluate_sweep")
    )
    assert PARAMS[section]
    for name, settings in PARAMS[section].items():
        own = f"{section}.{name}"
        for kind in (train, evaluate):
            _, deps, used = stages[f"{kind}@{name}"]
            assert own in used and not {"runs", "sweeps"} & used
            assert not {p for p in used if p.startswith(("runs.", "sweeps."))} - {own}
            assert f"data/{settings['dataset']}.npz" in deps
        assert f"models/{name}" in stages[f"{evaluate}@{name}"][1]


def test_comparisons_depend_on_every_model_they_name(stages):
    for name, settings in PARAMS["compare"].items():
        named = [
            *settings["runs"],
            *settings.get("cifar_pair", []),
            *settings.get("autoencoders", []),
            *[settings[k] for k in ("judge", "autoencoder") if k in settings],
        ]
        deps = stages[name][1]
        folders = {f"models/{run.split('/')[0]}" for run in named}  # a sweep's: models/<sweep>/
        missing = sorted(folders - deps)
        assert not missing, f"{name} reads {missing} but does not depend on them"
        extra = {d for d in deps if d.startswith("models/")} - folders
        assert not extra, f"{name} depends on models it never reads: {sorted(extra)}"
        if name == "beta_study":  # every shapes run's training curve: its convergence
            curves = {f"reports/curves/{run}" for run in named if run in PARAMS["sweeps"]}
            listed = {d for d in deps if d.startswith("reports/curves/")}
            assert curves == listed, (
                f"beta_study reads {sorted(curves)}, depends on {sorted(listed)}"
            )


def test_render_depends_on_the_models_and_data_it_draws(stages):
    """render's figures decode the baseline and the CIFAR beta pair (report.draw_comparisons) on
    the test images of the pair's dataset; `report.roles` names them from params.yaml."""
    params = load_params(ROOT / "params.yaml")
    r = roles(params)
    drawn = [r["baseline"], *r["pair"]]
    deps = stages["render"][1]
    assert {d for d in deps if d.startswith("models/")} == {f"models/{run}" for run in drawn}
    dataset = run_config(params, r["pair"][0])["dataset"]
    assert {d for d in deps if d.startswith("data/")} == {f"data/{dataset}.npz"}
