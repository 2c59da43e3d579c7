import time

import pytest

from vaelab import tracking
from vaelab.errors import VaelabError


def test_unreachable_tracking_server_is_reported_at_once(monkeypatch):
    monkeypatch.setenv(
        "MLFLOW_TRACKING_URI", "http://127.0.0.1:9"
    )  # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(
        VaelabError, match=r"MLflow tracking server http://127.0.0.1:9 is unreachable"
    ):
        tracking.check_tracking_server()
    assert time.monotonic() - started < 15


def test_local_sqlite_store_is_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert tracking.check_tracking_server().startswith("sqlite:")


def test_flatten_nested_params():
    flat = tracking.flatten("", {"conv": {"model": {"widths": [8, 16]}, "lr": 0.001}})
    assert flat == {"conv.model.widths": [8, 16], "conv.lr": 0.001}


def test_final_numbers_join_the_training_run_and_never_create_a_new_one(tmp_path, monkeypatch):
    import mlflow
    import torch

    from vaelab import store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    store.save_model(store.model_dir("tiny"), torch.nn.Linear(2, 2), {"model": {}})
    with tracking.training_run("tiny", "toy") as run:
        tracking.record_run("tiny", run)
    tracking.log_final(
        "tiny", {"test_bpd": 5.5, "dci": {"informativeness": 0.5}, "kl_per_dim": [1.0]}
    )
    tracking.log_final("never_trained", {"test_bpd": 1.0})  # no run: a note, not a new run
    client = mlflow.MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_name for r in runs] == ["tiny"]
    assert runs[0].data.metrics == {"final.test_bpd": 5.5, "final.dci.informativeness": 0.5}

    (store.model_dir("tiny") / tracking.RUN_FILE).unlink()  # e.g. models pulled from a remote
    assert tracking.find_run("tiny") == run.info.run_id  # found by tag and model checksum
