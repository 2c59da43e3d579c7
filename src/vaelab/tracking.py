"""MLflow: where runs go, how a run is started, and how later stages find it again.

The tracking URI is `MLFLOW_TRACKING_URI` when set, else the sqlite file mlflow.db at the root of
the repository: `$DVC_ROOT`, which DVC sets for every stage and points at the parent repository
for queued experiments (`dvc exp run --queue`), whose temporary copies DVC deletes. So `mlflow ui`
at the root shows every run, queued and parallel ones included. One experiment per dataset
(`vaelab-<dataset>`); one MLflow run per trained run (a sweep's stage: one per seed), named
`<run>-<params hash>` (plus the DVC experiment name) and tagged with the run name, params hash,
git commit, DVC experiment and baseline revision. Later stages (evaluate, compare) add their
numbers to that run, found by the id in models/<run>/run.json, never by creating a param-less run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import urllib.request
import warnings
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402  (telemetry must be switched off before the import)
from filelock import FileLock  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from . import store  # noqa: E402
from .errors import VaelabError  # noqa: E402

RUN_FILE = "run.json"
RUN_TAG = "vaelab.run"
PARAMS_TAG = "vaelab.params_sha256"


def use_repository_store() -> str:
    """Point MLflow at the repository's store (see the module docstring); returns the URI."""
    root = Path(os.environ.get("DVC_ROOT") or ".").resolve()
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # set every time: it overrides the variable once set
    return uri


def store_lock(uri: str):
    """One process at a time creates a sqlite store's tables and its experiments: MLflow does
    neither under a lock, and a sweep's runs (or `dvc queue start -j 2`) start together."""
    if not uri.startswith("sqlite:///"):
        return contextlib.nullcontext()
    return FileLock(uri.removeprefix("sqlite:///") + ".lock")


def check_tracking_server() -> str:
    """Fail fast, in one line, when the tracking store cannot be reached (before any work)."""
    uri = use_repository_store()
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10).close()
        except OSError as e:  # urllib's URLError included
            raise VaelabError(
                f"MLflow tracking server {uri} is unreachable ({getattr(e, 'reason', e)}); "
                "start it, fix MLFLOW_TRACKING_URI, or unset it to log to ./mlflow.db"
            ) from None
        return uri
    try:
        with store_lock(uri):
            mlflow.MlflowClient().search_experiments(max_results=1)
    except Exception as e:  # a broken sqlite path, a refused file store, ...
        raise VaelabError(
            f"MLflow tracking store {uri} is unusable ({str(e).splitlines()[0]}); fix "
            "MLFLOW_TRACKING_URI or unset it to log to ./mlflow.db"
        ) from None
    return uri


def flatten(prefix: str, value) -> dict:
    """Nested dicts -> {"a.b.c": leaf}; lists and other leaves are kept as they are."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


def params_digest(run: dict) -> str:
    return hashlib.sha256(json.dumps(run, sort_keys=True, default=str).encode()).hexdigest()


def experiment_name(run: dict) -> str:
    """One MLflow experiment per dataset: its runs are compared side by side."""
    return f"vaelab-{run['dataset']}"


def stored_run(run_id: str):
    """The info of run `run_id` in the store in use, None when the store holds no such run."""
    try:
        return mlflow.MlflowClient().get_run(run_id).info
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise VaelabError(  # no answer: no duplicate run, no numbers lost in silence
            f"MLflow {mlflow.get_tracking_uri()} could not be asked for run {run_id} "
            f"({str(e).splitlines()[0]}); rerun when the tracking store answers"
        ) from None


def resumable_run(run_id: str | None) -> str | None:
    """`run_id` if the store in use still holds that run, not deleted (an interrupted training goes
    on in it), else None: the store was moved, reset or is another server, or the run was deleted
    (MLflow cannot reopen it), and the training starts a new MLflow run."""
    if run_id is None:
        return None
    info = stored_run(run_id)
    if info is None or info.lifecycle_stage != "active":
        print(
            f"note: MLflow run {run_id} of the checkpoint is not a live run in "
            f"{mlflow.get_tracking_uri()}; training goes on in a new run"
        )
        return None
    return run_id


@contextlib.contextmanager
def training_run(run: dict, run_id: str | None = None):
    """Start the MLflow run of a training stage (its params logged), or continue an interrupted
    one (`run_id`)."""
    experiment = experiment_name(run)
    with store_lock(use_repository_store()):
        existing = mlflow.get_experiment_by_name(experiment)
        if existing is not None and existing.lifecycle_stage != "active":
            raise VaelabError(
                f"MLflow experiment {experiment} is deleted in {mlflow.get_tracking_uri()}; "
                f"restore it (mlflow experiments restore --experiment-id "
                f"{existing.experiment_id}) or remove it for good (mlflow gc)"
            )
        mlflow.set_experiment(experiment)
        # By id: when two processes create the experiment at once, MLflow's set_experiment may
        # return before making it the active one, and the run would land in "Default".
        experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    digest, dvc_experiment = params_digest(run), os.environ.get("DVC_EXP_NAME", "")
    name = "-".join(part for part in (run["name"], digest[:8], dvc_experiment) if part)
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=None if run_id else name,
    ) as active:
        if run_id is None:
            mlflow.log_params({k: str(v) for k, v in flatten("", run).items()})
            tags = {
                RUN_TAG: run["name"],
                PARAMS_TAG: digest,
                "dvc.exp_name": dvc_experiment or "workspace",
            }
            # MLflow tags the commit itself (mlflow.source.git.commit); a DVC experiment's
            # baseline is the commit it branched from.
            if "DVC_EXP_BASELINE_REV" in os.environ:
                tags["dvc.baseline_rev"] = os.environ["DVC_EXP_BASELINE_REV"]
            mlflow.set_tags(tags)
        yield active


def log_dataset(name: str, data: dict, path: Path, digest: str) -> None:
    """The training images (and labels) as the run's input dataset, identified by the file's
    checksum, so the UI shows what each run trained on."""
    labels = data.get("y_train")
    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice (for "" and "file") and warns that a
        # path "can be interpreted in multiple ways", naming the same class twice: nothing to fix.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        dataset = mlflow.data.from_numpy(
            data["x_train"].numpy(),
            source=str(Path(path).resolve()),
            targets=None if labels is None else labels.numpy(),
            name=name,
            digest=digest[:16],
        )
    try:
        mlflow.log_input(dataset, context="training")
    except mlflow.exceptions.MlflowException as e:
        # Two seeds of a sweep log the same dataset at once: the store checks for the row, then
        # inserts it, so the second insert can hit the unique key the first just wrote. Logging
        # again finds that row and only links this run to it.
        if "UNIQUE constraint" not in str(e):
            raise
        mlflow.log_input(dataset, context="training")


def record_run(run_name: str, run) -> None:
    """Written into models/<run>/ beside the weights, so later stages find the run."""
    info = run.info
    store.write_json(
        store.model_dir(run_name) / RUN_FILE,
        {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "tracking_uri": mlflow.get_tracking_uri(),
        },
    )


def log_final(run_name: str, metrics: dict, figures: Path | None = None) -> None:
    """Add an evaluation's numbers (and its figures folder) to the training run of `run_name`."""
    run_file = store.model_dir(run_name) / RUN_FILE
    run_id = store.read_json(run_file)["run_id"] if run_file.is_file() else None
    if run_id is None or stored_run(run_id) is None:
        print(
            f"note: no MLflow training run of {run_name} in {mlflow.get_tracking_uri()} (models "
            "from elsewhere, or another store?); its evaluation is in the report files only"
        )
        return
    # The numbers of the nested dict (lists skipped), named with MLflow's allowed characters only.
    numbers = {
        re.sub(r"[^\w\-. :/]", "_", key): float(value)
        for key, value in flatten("final", metrics).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    client, now = mlflow.MlflowClient(), int(time.time() * 1000)
    values = [mlflow.entities.Metric(k, v, now, 0) for k, v in sorted(numbers.items())]
    for start in range(0, len(values), 500):  # log_batch takes at most 1,000 metrics
        client.log_batch(run_id, metrics=values[start : start + 500])
    if figures is not None:
        client.log_artifacts(run_id, str(figures), artifact_path="figures")
