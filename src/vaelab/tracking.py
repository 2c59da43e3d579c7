"""MLflow: where runs go, and how a stage finds the run of a model trained by an earlier stage.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else MLflow's own default (a sqlite file,
mlflow.db, in the directory DVC runs stages from: the project root), so `mlflow ui` there shows
every run. Each training stage records its run id in `models/<name>/run.json`; evaluate and
render reopen that run to add their metrics and figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402  (telemetry must be switched off before the import)
from mlflow.exceptions import MlflowException  # noqa: E402

from .errors import VaelabError  # noqa: E402

RUN_FILE = "run.json"


def check_tracking_server() -> str:
    """Fail fast, in one line, when the tracking store cannot be reached (before any training)."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
        except (urllib.error.URLError, OSError) as e:
            raise VaelabError(f"MLflow tracking server {uri} is unreachable ({getattr(e, 'reason', e)}); "
                              "start it, fix MLFLOW_TRACKING_URI, or unset it to log to ./mlflow.db") from None
        return uri
    try:
        mlflow.MlflowClient().search_experiments(max_results=1)
    except Exception as e:  # a broken sqlite path, a refused file store, ...
        raise VaelabError(f"MLflow tracking store {uri} is unusable ({str(e).splitlines()[0]}); fix "
                          "MLFLOW_TRACKING_URI or unset it to log to ./mlflow.db") from None
    return uri


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(prefix: str, value) -> dict[str, str]:
    """Nested params -> {"conv.model.widths": "[48, 96]"} for mlflow.log_params."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: str(value)}


@contextmanager
def model_run(experiment: str, name: str, run_id: str | None = None):
    """Start (or continue, given its id) the run of one model in `experiment`."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else name) as run:
        yield run


def record_run(model_dir: Path, run) -> None:
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    (Path(model_dir) / RUN_FILE).write_text(json.dumps(
        {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id,
         "run_name": run.info.run_name, "tracking_uri": mlflow.get_tracking_uri()}, indent=2) + "\n")


@contextmanager
def reopen_run(model_dir: Path, experiment: str, name: str):
    """The training run of the model in `model_dir`; a new run of the same name if this tracking
    store does not know it (e.g. models pulled from a DVC remote onto another machine)."""
    run_file = Path(model_dir) / RUN_FILE
    run_id = json.loads(run_file.read_text())["run_id"] if run_file.is_file() else None
    if run_id is not None:
        try:
            mlflow.MlflowClient().get_run(run_id)
        except MlflowException:
            print(f"note: MLflow run {run_id} of {name} is not in {mlflow.get_tracking_uri()}; "
                  "logging to a new run of the same name")
            run_id = None
    with model_run(experiment, name, run_id) as run:
        yield run
