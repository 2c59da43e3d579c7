"""A sweep's runs side by side: each in its own single-thread process, every one to its end, and a
failure named by its run in one line."""

import os
import signal
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


def die(params: dict, name: str, folder: str) -> dict:
    if name == "b":
        os._exit(9)  # as the kernel's OOM killer would leave it: no exception, no message
    return report_worker(params, name, folder)


def test_a_run_whose_process_dies_is_named_and_takes_no_other_run_with_it(tmp_path):
    with pytest.raises(VaelabError, match=r"^b: its process died \(exit code 9\); rerun$"):
        run_each(die, PARAMS, ["a", "b", "c"], str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]


def fail_with_its_name(params: dict, name: str, folder: str) -> dict:
    raise VaelabError(f"{name}: loss became nan at epoch 1")


def test_a_message_that_names_its_run_is_not_prefixed_twice(tmp_path):
    with pytest.raises(VaelabError, match=r"^a: loss became nan at epoch 1 \(and 1 more\)$"):
        run_each(fail_with_its_name, PARAMS, ["a", "b"], str(tmp_path))


def unpicklable(params: dict, name: str, folder: str):
    report_worker(params, name, folder)
    return lambda: name  # a lambda cannot be pickled back to the stage


def test_an_outcome_that_cannot_be_sent_back_is_named_not_called_a_death(tmp_path):
    with pytest.raises(VaelabError, match=r"^a: its outcome could not be sent to the stage"):
        run_each(unpicklable, PARAMS, ["a"], str(tmp_path))


class TwoArgumentError(Exception):
    """Pickles, but cannot be unpickled (pickle calls it with its one message argument)."""

    def __init__(self, message, detail):
        super().__init__(message)


def raise_unreadable(params: dict, name: str, folder: str):
    raise TwoArgumentError("boom", "detail")


def test_an_outcome_that_cannot_be_read_back_is_named(tmp_path):
    with pytest.raises(VaelabError, match=r"^a: its outcome could not be read"):
        run_each(raise_unreadable, PARAMS, ["a"], str(tmp_path))


def kill_one(params: dict, name: str, folder: str) -> dict:
    if name == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    return report_worker(params, name, folder)


def test_a_killed_process_is_named_with_its_signal(tmp_path):
    with pytest.raises(VaelabError, match=r"^b: its process died \(killed by SIGKILL, out of"):
        run_each(kill_one, PARAMS, ["a", "b"], str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


STAGE = """
import os, sys, time
from pathlib import Path
from vaelab.parallel import run_each

def sleeper(params, name, folder):
    Path(folder, name).write_text(str(os.getpid()))
    try:
        time.sleep(120)
    finally:  # a clean-up that takes a while: a second SIGINT must not cut it short
        time.sleep(1)
        Path(folder, name + ".cleaned").write_text("")

try:
    run_each(sleeper, {"device": "cpu"}, ["a", "b"], sys.argv[1])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("whole_group", [False, True], ids=["the stage alone", "Ctrl-C"])
def test_a_sigint_to_the_stage_stops_its_runs_after_their_clean_up(tmp_path, whole_group):
    """SIGINT to the stage process only: its runs must not go on without it. A terminal's Ctrl-C
    (the whole group) reaches every run, then the stage's own stop() a second time: each run's
    clean-up still ends, and no process prints a traceback."""
    import subprocess
    import sys
    import time

    stage = subprocess.Popen(
        [sys.executable, "-c", STAGE, str(tmp_path)],
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        # a run's file exists before its pid is in it: wait for both pids
        while (
            sum(1 for p in tmp_path.iterdir() if p.read_text()) < 2 and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        runs = [int(p.read_text()) for p in tmp_path.iterdir()]
        assert len(runs) == 2
        if whole_group:
            os.killpg(stage.pid, signal.SIGINT)
        else:
            stage.send_signal(signal.SIGINT)
        _, stderr = stage.communicate(timeout=60)
        assert stage.returncode == 130
        assert [pid for pid in runs if Path(f"/proc/{pid}").exists()] == []
        assert sorted(p.name for p in tmp_path.glob("*.cleaned")) == ["a.cleaned", "b.cleaned"]
        assert "Traceback" not in stderr
    finally:
        stage.kill()
