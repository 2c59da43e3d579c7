"""What the cross-run stages share (quality.py: sample_quality; betas.py: beta_study; report.py:
render): where their JSON goes, how a run's evaluation and model are read, how a beta names its
entry, and which runs are the shapes beta study.

Each comparison's JSON records the paths of its figures (relative to reports/) under "figures", so
the report and theory.md link to what was drawn.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import store
from .config import run_config, stage_name

SAMPLE_QUALITY = store.REPORTS / "sample_quality.json"
METRICS_BETA = store.REPORTS / "metrics_beta.json"


def relative(path: Path) -> str:
    """A path under reports/ as the Markdown files there link to it."""
    return Path(path).relative_to(store.REPORTS).as_posix()


def beta_key(beta: float) -> str:
    """How a beta names its entry of metrics_beta.json: 1.0 -> "1", 2.5 -> "2.5"."""
    return f"{beta:g}"


def read_eval(run: str) -> dict:
    return store.read_json(store.eval_path(run), stage_name("evaluate", run))


def load_run_model(run: str, device: torch.device):
    return store.load_model(store.model_dir(run), device)[0]


def shapes_runs(params: dict, config: dict) -> dict[str, list[str]]:
    """{beta label: its runs (one per seed)} of the shapes sweep, lowest beta first; betas from the
    runs' configs (every beta has the same seeds: config.py checked it)."""
    out: dict[str, list[str]] = {}
    for run in config["runs"]:
        out.setdefault(beta_key(run_config(params, run)["beta"]), []).append(run)
    return dict(sorted(out.items(), key=lambda item: float(item[0])))
