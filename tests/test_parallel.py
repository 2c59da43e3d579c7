"""A sweep's runs side by side: each in its own single-thread process, every one to its end, and a
failure named by its run in one line."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.parallel import run_each

PARAMS = {"device": "cpu"}


class TwoArgumentError(Exception):
    """Pickles, but cannot be unpickled (pickle calls it with its one message argument)."""

    def __init__(self, message, detail):
        super().__init__(message)


def worker(params: dict, name: str, folder: str, how: str = "") -> dict:
    """Writes a file once it ends well, so the test sees which runs went to their end; `how` says
    how run b (or every run) fails."""
    if how == "named":
        raise VaelabError(f"{name}: loss became nan at epoch 1")
    if how == "unreadable":
        raise TwoArgumentError("boom", "detail")
    if name == "b" and how == "nan":
        raise VaelabError("loss became nan at epoch 2; lower lr")
    if name == "b" and how == "exit":
        os._exit(9)  # as the kernel's OOM killer would leave it: no exception, no message
    if name == "b" and how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    Path(folder, name).write_text("done")
    if how == "unpicklable":
        return lambda: name  # a lambda cannot be pickled back to the stage
    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "name": name}


def test_every_run_gets_its_own_single_thread_process(tmp_path):
    results = run_each(worker, PARAMS, ["a", "b", "c"], str(tmp_path))
    assert list(results) == ["a", "b", "c"] and all(r["name"] == n for n, r in results.items())
    assert {r["threads"] for r in results.values()} == {1}
    assert os.getpid() not in {r["pid"] for r in results.values()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "how, names, message, finished",
    [
        ("nan", "abc", r"^b: loss became nan at epoch 2; lower lr$", ["a", "c"]),
        ("exit", "abc", r"^b: its process died \(exit code 9\); rerun$", ["a", "c"]),
        ("kill", "ab", r"^b: its process died \(killed by SIGKILL, out of", ["a"]),
        # a message that already names its run is not prefixed twice
        ("named", "ab", r"^a: loss became nan at epoch 1 \(and 1 more\)$", []),
        ("unpicklable", "a", r"^a: its outcome could not be sent to the stage", ["a"]),
        ("unreadable", "a", r"^a: its outcome could not be read", []),
    ],
)
def test_a_failed_run_is_named_in_one_line_and_the_others_still_finish(
    tmp_path, how, names, message, finished
):
    with pytest.raises(VaelabError, match=message):
        run_each(worker, PARAMS, list(names), str(tmp_path), how)
    assert sorted(p.name for p in tmp_path.iterdir()) == finished


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
    """Its runs must not outlive the stage; Ctrl-C (the whole group) reaches each run twice, and
    still every clean-up ends and no process prints a traceback."""
    stage = subprocess.Popen(
        [sys.executable, "-c", STAGE, str(tmp_path)],
        start_new_session=True,
        # as a terminal starts it: a suite run as a background job (`pytest &`) ignores SIGINT,
        # and an ignored signal is inherited, so the stage would never see the test's Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
