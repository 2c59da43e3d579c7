import multiprocessing
import os
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

from vaelab import betas, evaluate, quality, store, tracking
from vaelab.config import load_params
from vaelab.errors import VaelabError
from vaelab.parallel import run_each

UNREACHABLE = r"MLflow tracking server http://127.0.0.1:9 is unreachable"


@pytest.mark.parametrize("stage", ["check", "evaluate_sweep", "sample_quality", "beta_study"])
def test_an_unreachable_tracking_server_fails_fast_before_any_work(stage, monkeypatch, tmp_path):
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on port 9
    monkeypatch.chdir(tmp_path)  # no data, no models: the check must come before any of them
    run = {
        "check": tracking.check_tracking_server,
        "evaluate_sweep": lambda: evaluate.evaluate_stage(params, "shapes_b1"),
        "sample_quality": lambda: quality.sample_quality(params),
        "beta_study": lambda: betas.beta_study(params),
    }[stage]
    started = time.monotonic()
    with pytest.raises(VaelabError, match=UNREACHABLE):
        run()
    assert time.monotonic() - started < (15 if stage == "check" else 30)


def test_final_numbers_join_the_training_run_and_never_create_a_new_one(
    tmp_path, monkeypatch, capsys
):
    flat = tracking.flatten("", {"conv": {"model": {"widths": [8, 16]}, "lr": 0.001}})
    assert flat == {"conv.model.widths": [8, 16], "conv.lr": 0.001}  # nested keys, lists whole
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    store.save_model(store.model_dir("tiny"), torch.nn.Linear(2, 2), {"model": {}})
    with tracking.training_run({"name": "tiny", "dataset": "toy", "lr": 0.1}) as run:
        tracking.record_run("tiny", run)
    tracking.log_final("tiny", {"test_bpd": 5.5, "judge": {"accuracy": 0.5}, "kl_per_dim": [1.0]})
    tracking.log_final("never_trained", {"test_bpd": 1.0})  # no run: a note, not a new run
    client = mlflow.MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.data.tags[tracking.RUN_TAG] for r in runs] == ["tiny"]
    assert runs[0].info.run_name.startswith("tiny-")  # with the params hash: runs told apart
    assert runs[0].data.params == {"name": "tiny", "dataset": "toy", "lr": "0.1"}
    assert runs[0].data.metrics == {"final.test_bpd": 5.5, "final.judge.accuracy": 0.5}

    store.write_json(store.model_dir("tiny") / tracking.RUN_FILE, {"run_id": "0" * 32})
    tracking.log_final("tiny", {"test_bpd": 6.5})  # e.g. another store: a note, no new run
    assert "note: no MLflow training run of tiny" in capsys.readouterr().out
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == 1


def test_the_store_is_found_from_the_repository_root_for_queued_experiments(tmp_path, monkeypatch):
    root, elsewhere = tmp_path / "repo", tmp_path / ".dvc" / "tmp" / "exps" / "run1"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # where DVC runs a queued experiment
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(root))
    assert tracking.use_repository_store() == f"sqlite:///{root.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking.use_repository_store() == "http://example.invalid:5000"  # the variable wins


def test_runs_are_named_and_tagged_so_they_can_be_told_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("DVC_EXP_NAME", "wide-lr")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    names = []
    for lr in (0.1, 0.2):
        run = {"name": "conv", "dataset": "toy", "lr": lr}
        with tracking.training_run(run) as active:
            data = {"x_train": torch.zeros(4, 8, 8, 3, dtype=torch.uint8), "y_train": None}
            tracking.log_dataset("toy", data, tmp_path / "toy.npz", "f" * 64)
            names.append(active.info.run_name)
    assert names[0] != names[1] and all(
        n.startswith("conv-") and n.endswith("-wide-lr") for n in names
    )
    logged = mlflow.get_run(mlflow.last_active_run().info.run_id)
    assert logged.data.tags["dvc.exp_name"] == "wide-lr"
    assert logged.data.tags["dvc.baseline_rev"] == "abc123"
    assert logged.data.tags[tracking.PARAMS_TAG] == tracking.params_digest(run)
    inputs = logged.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["toy"] and inputs[0].dataset.digest == "f" * 16
    assert np.isfinite(float(logged.data.params["lr"]))


def open_new_store(params: dict, name: str, uri: str) -> str:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    tracking.check_tracking_server()
    with tracking.store_lock(uri):
        return mlflow.set_experiment("vaelab-shapes").experiment_id


def test_the_store_lock_keeps_other_processes_waiting_so_one_store_is_created(tmp_path):
    """A sweep's runs open a new store at once: the lock keeps MLflow from creating it twice."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ids = run_each(open_new_store, {"device": "cpu"}, ["s0", "s1", "s2"], uri)
    assert len(set(ids.values())) == 1
    assert (tmp_path / "mlflow.db.lock").exists()
    entered = multiprocessing.get_context("fork").Event()

    def enter_the_lock() -> None:
        with tracking.store_lock(uri):
            entered.set()

    other = multiprocessing.get_context("fork").Process(target=enter_the_lock)
    with tracking.store_lock(uri):
        other.start()
        assert not entered.wait(timeout=1.0)  # held here: the other process must wait
    assert entered.wait(timeout=10.0)  # released: it gets in
    other.join(timeout=10.0)
    assert other.exitcode == 0


def test_a_resumed_training_goes_on_in_its_run_or_a_new_one_when_it_is_gone(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert tracking.check_tracking_server().startswith("sqlite:")  # a local store is usable
    run = {"name": "tiny", "dataset": "toy"}
    with tracking.training_run(run) as started:
        pass
    run_id = started.info.run_id
    assert tracking.resumable_run(run_id) == run_id
    with tracking.training_run(run, run_id) as resumed:  # the same run goes on
        assert resumed.info.run_id == run_id
    assert tracking.resumable_run(None) is None
    assert tracking.resumable_run("0" * 32) is None  # e.g. the store was reset
    mlflow.MlflowClient().delete_run(run_id)  # deleted in the UI: MLflow cannot reopen it
    assert tracking.resumable_run(run_id) is None
    assert capsys.readouterr().out.count("training goes on in a new run") == 2

    def unavailable(self, run_id):
        raise MlflowException("503 Service Unavailable", error_code=INTERNAL_ERROR)

    monkeypatch.setattr(mlflow.MlflowClient, "get_run", unavailable)  # no answer: no duplicate run
    with pytest.raises(VaelabError, match=r"could not be asked for run 1234 \(503 .*rerun when"):
        tracking.resumable_run("1234")


def test_a_deleted_experiment_is_one_line_naming_how_to_restore_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    tracking.check_tracking_server()
    mlflow.delete_experiment(mlflow.create_experiment("vaelab-toy"))
    deleted = r"vaelab-toy is deleted in .*mlflow experiments restore"
    with (
        pytest.raises(VaelabError, match=deleted),
        tracking.training_run({"name": "t", "dataset": "toy"}),
    ):
        pass
