"""The runs of a sweep side by side: one process per run, one torch thread each.

Why: a shapes run is small. One process with two threads keeps two cores only ~70% busy (the
shapes VAE trains at ~1,190 img/s), and every stage pays ~13 s of Python, torch and MLflow
start-up. Single-thread processes forked from one stage pay the start-up once and fill the cores
(two of them: ~1,730 img/s together, docs/benchmarks.md). One thread per run also makes each run's
numbers independent of how many cores the machine has.

On an accelerator the runs go one after another in the stage's own process: they would share one
device anyway.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import multiprocessing
import os
import signal
import sys

import torch

from .errors import VaelabError
from .runtime import resolve_device

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def start_worker() -> None:
    torch.set_num_threads(1)
    if sys.platform == "linux":  # a killed stage (kill -9 included) leaves no orphan run behind
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_each(function, params: dict, names: list[str], *args) -> dict:
    """{name: function(params, name, *args)} for every name; every run goes to its end (or its
    checkpoint), then the first failure is raised as one line that names its run."""
    if resolve_device(params["device"]).type != "cpu":
        return {name: function(params, name, *args) for name in names}
    processes = min(len(names), 2 * (os.cpu_count() or 1))
    # fork: the workers inherit the imports; the stage has touched neither torch's thread pool nor
    # MLflow's store before this point, so nothing shared is forked mid-use.
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    with concurrent.futures.ProcessPoolExecutor(
        processes, mp_context=context, initializer=start_worker
    ) as pool:
        futures = {name: pool.submit(function, params, name, *args) for name in names}
        concurrent.futures.wait(futures.values())
    results, failures = {}, []
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            results[name] = future.result()
        elif isinstance(error, concurrent.futures.process.BrokenProcessPool):
            failures.append(
                f"{name}: its process died (out of memory or killed); rerun to resume it"
            )
        elif isinstance(error, VaelabError):
            failures.append(f"{name}: {error}")
        else:
            raise error
    if failures:
        others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise VaelabError(failures[0] + others)
    return results
