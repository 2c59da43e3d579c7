"""A sweep's runs side by side: each in its own single-thread process, every one to its end, and a
failure named by its run in one line."""

import os
from pathlib import Path

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.parallel import run_each

PARAMS = {"device": "cpu"}


def report_worker(params: dict, name: str, folder: str) -> dict:
    """Writes a file, so the test sees that the run went to its end."""
    Path(folder, name).write_text("done")
    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "name": name}


def fail_one(params: dict, name: str, folder: str) -> dict:
    if name == "b":
        raise VaelabError("loss became nan at epoch 2; lower lr")
    return report_worker(params, name, folder)


def test_every_run_gets_its_own_single_thread_process(tmp_path):
    results = run_each(report_worker, PARAMS, ["a", "b", "c"], str(tmp_path))
    assert list(results) == ["a", "b", "c"] and all(r["name"] == n for n, r in results.items())
    assert {r["threads"] for r in results.values()} == {1}
    assert os.getpid() not in {r["pid"] for r in results.values()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_a_failed_run_is_named_and_the_others_still_finish(tmp_path):
    with pytest.raises(VaelabError, match=r"^b: loss became nan at epoch 2; lower lr$"):
        run_each(fail_one, PARAMS, ["a", "b", "c"], str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]
