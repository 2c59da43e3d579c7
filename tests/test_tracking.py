import time

import pytest

from vaelab import tracking
from vaelab.errors import VaelabError


def test_unreachable_tracking_server_is_reported_at_once(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(VaelabError, match=r"MLflow tracking server http://127.0.0.1:9 is unreachable"):
        tracking.check_tracking_server()
    assert time.monotonic() - started < 15


def test_local_sqlite_store_is_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert tracking.check_tracking_server().startswith("sqlite:")


def test_flatten_nested_params():
    flat = tracking.flatten("", {"conv": {"model": {"widths": [8, 16]}, "lr": 0.001}})
    assert flat == {"conv.model.widths": "[8, 16]", "conv.lr": "0.001"}
