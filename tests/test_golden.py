"""The committed reports/*.md are exactly what the code writes from the committed JSON beside them,
and the numbers summarised over seeds are what the seeds' evaluations give. Nothing is written."""

import json
from pathlib import Path

import pytest

from vaelab import betas, evaluate, report
from vaelab.config import load_params
from vaelab.sweep import factor_spread, spread

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"


def committed(name: str) -> str:
    return (REPORTS / name).read_text()


def test_summary_and_readme_are_rebuilt_byte_for_byte(monkeypatch):
    monkeypatch.chdir(ROOT)  # the stages read reports/ relative to the project root
    params = load_params(ROOT / "params.yaml")
    summary, readme = report.compose(params, report.read_inputs(params))
    assert summary == committed("summary.md")
    assert readme == committed("README.md")


def test_theory_is_rebuilt_byte_for_byte():
    study = json.loads((REPORTS / "metrics_beta.json").read_text())
    assert betas.theory_markdown(study) == committed("theory.md")


def seed_evaluations(runs: list[str]) -> list[dict]:
    return [json.loads((REPORTS / "eval" / f"{run}.json").read_text()) for run in runs]


def test_each_sweep_headline_is_its_seeds_summary():
    """Within 1e-12, not to the byte: the committed files summed the seeds exactly
    (statistics.fmean), sweep.spread as numpy does, which can differ in the last bit."""
    params = load_params(ROOT / "params.yaml")
    for sweep, runs in params["sweeps"].items():
        committed = json.loads((REPORTS / "metrics" / f"{sweep}.json").read_text())
        rebuilt = evaluate.sweep_headline(seed_evaluations(runs))
        assert {stat: list(rebuilt[stat]) for stat in rebuilt} == {
            stat: list(committed[stat]) for stat in committed
        }
        for stat, values in committed.items():
            assert rebuilt[stat] == pytest.approx(values, rel=1e-12, abs=1e-15), (sweep, stat)


def test_the_beta_study_spreads_are_rebuilt_exactly():
    study = json.loads((REPORTS / "metrics_beta.json").read_text())
    for label, runs in study["runs"]["shapes"].items():
        rows = [betas.shapes_summary_row(m) for m in seed_evaluations(runs)]
        assert spread(rows) == study["shapes_spread"][label], label
        assert factor_spread(seed_evaluations(runs)) == study["factors"][label], label
    rows = [betas.shapes_summary_row(m) for m in seed_evaluations(study["runs"]["autoencoders"])]
    assert spread(rows) == study["autoencoder_spread"]
