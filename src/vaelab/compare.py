"""What the cross-run stages (quality.py, betas.py, report.py) share. Each comparison's JSON records
its figures' paths (relative to reports/) under "figures", so the report and theory.md link them."""

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
    """{beta label: its runs (one per seed)} of the shapes sweep, lowest beta first."""
    out: dict[str, list[str]] = {}
    for run in config["runs"]:
        out.setdefault(beta_key(run_config(params, run)["beta"]), []).append(run)
    return dict(sorted(out.items(), key=lambda item: float(item[0])))
