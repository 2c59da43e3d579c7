"""A sweep's runs side by side: a pool of single-thread processes, every run to its end, and a
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


def worker(params: dict, name: str, folder: str, how: str = "") -> dict:
    """Writes a file once it ends well, so the test sees which runs went to their end; `how` says
    how run b (or every run) fails."""
    if how == "named":
        raise VaelabError(f"{name}: loss became nan at epoch 1")
    if name == "b" and how == "nan":
        raise VaelabError("loss became nan at epoch 2; lower lr")
    if name == "b" and how == "exit":
        os._exit(9)  # as the kernel's OOM killer would leave it: no exception, no message
    if name == "b" and how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    Path(folder, name).write_text("done")
    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "name": name}


def test_every_run_goes_to_a_single_thread_process_at_most_one_per_core(tmp_path):
    names = [f"r{i}" for i in range(os.cpu_count() + 1)]
    results = run_each(worker, PARAMS, names, str(tmp_path))
    assert list(results) == names and all(r["name"] == n for n, r in results.items())
    assert {r["threads"] for r in results.values()} == {1}
    pids = {r["pid"] for r in results.values()}
    assert os.getpid() not in pids and len(pids) <= os.cpu_count()
    assert sorted(p.name for p in tmp_path.iterdir()) == names


@pytest.mark.parametrize(
    "how, names, message, finished",
    [
        ("nan", "abc", r"^b: loss became nan at epoch 2; lower lr$", ["a", "c"]),
        # a message that already names its run is not prefixed twice
        ("named", "ab", r"^a: loss became nan at epoch 1 \(and 1 more\)$", []),
    ],
)
def test_a_failed_run_is_named_in_one_line_and_the_others_still_finish(
    tmp_path, how, names, message, finished
):
    with pytest.raises(VaelabError, match=message):
        run_each(worker, PARAMS, list(names), str(tmp_path), how)
    assert sorted(p.name for p in tmp_path.iterdir()) == finished


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_dead_process_is_one_line_that_says_rerun_resumes(tmp_path, how):
    """What concurrent.futures costs: the broken pool stops the dead run's siblings too."""
    with pytest.raises(VaelabError, match=r"^a process of the runs b died .*resumes from its last"):
        run_each(worker, PARAMS, ["b"], str(tmp_path), how)


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

os.sched_getaffinity = lambda pid: {0, 1}  # two processes: run c waits in the pool's queue
try:
    run_each(sleeper, {"device": "cpu"}, ["a", "b", "c"], sys.argv[1])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("whole_group", [False, True], ids=["the stage alone", "Ctrl-C"])
def test_a_sigint_to_the_stage_stops_its_runs_after_their_clean_up(tmp_path, whole_group):
    """Its runs must not outlive the stage, nor a queued one start; Ctrl-C (the whole group)
    reaches each run twice, and still every clean-up ends and no process prints a traceback."""
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
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.cleaned", "b", "b.cleaned"]
        assert "Traceback" not in stderr
    finally:
        stage.kill()
