import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vaelab.errors import VaelabError
from vaelab.params import load_params, model_section

ROOT = Path(__file__).resolve().parents[1]


def test_the_project_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    for name in ("fc", "conv", "conv_beta5"):
        section = model_section(params, name)
        assert section["epochs"] >= 1 and section["lr"] > 0
    assert model_section(params, "conv_beta5")["beta"] == 5.0
    assert model_section(params, "conv")["beta"] == 1.0


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["conv"].update(lr="fast"), r"conv.lr must be a number, got 'fast'"),
    (lambda p: p["conv"].update(epochs=2.5), r"conv.epochs must be an integer"),
    (lambda p: p["conv"].update(beta=-1), r"conv.beta must be >= 0"),
    (lambda p: p["conv"]["model"].update(arch="transformer"), r"conv.model.arch must be one of"),
    (lambda p: p["conv"]["model"].update(widths=[]), r"conv.model.widths must be a non-empty list"),
    (lambda p: p.pop("conv"), r"conv section is missing"),
])
def test_invalid_params_name_the_key_and_the_fix(tmp_path, edit, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(VaelabError, match=message):
        model_section(load_params(tmp_path / "params.yaml"), "conv")


def test_a_stage_reports_bad_params_in_one_line(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["conv"]["lr"] = "fast"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, str(ROOT / "pipeline" / "train.py"), "conv"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml: conv.lr must be a number, got 'fast'; fix it in params.yaml "
        "(or dvc exp run -S conv.lr=...)"]
