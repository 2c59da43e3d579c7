"""The runs of a sweep side by side: a pool of single-thread processes, at most one per core.

Why: a shapes run is small. One process with two threads keeps two cores only ~70% busy (the
shapes VAE trains at ~1,190 img/s), and every stage pays ~13 s of Python, torch and MLflow
start-up. Single-thread processes forked from one stage pay the start-up once and fill the cores
(two of them: ~1,730 img/s together, docs/benchmarks.md). One thread per run (torch, and the BLAS
and OpenMP pools of numpy and scikit-learn) also makes each run's numbers independent of how many
cores the machine has.

What concurrent.futures costs: a run whose process dies (out of memory, killed) breaks the pool,
which stops its siblings too; each keeps its last checkpoint, so a rerun resumes them all. On an
accelerator the runs go one after another in the stage's own process: they would share one device.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import torch
from threadpoolctl import threadpool_limits

from .errors import VaelabError
from .runtime import resolve_device

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies
STOPPING = None  # in a pool process: the stage's multiprocessing.Event "start no other run"


def failure(name: str, error: BaseException) -> str:
    text = str(error)
    return text if text.startswith(name) else f"{name}: {text}"


def start_worker(stage: int, stopping) -> None:
    """A pool process: one thread, no Ctrl-C between runs, and it dies with the stage. The process
    is reused for the next run; each run seeds its own RNGs, so its numbers do not depend on it."""
    global STOPPING
    STOPPING = stopping
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":  # a killed stage (kill -9 included) leaves no orphan run
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != stage:  # the stage died before the line above
            os._exit(1)
    torch.set_num_threads(1)
    threadpool_limits(1)


def interrupt_once(signum, frame) -> None:
    """Ctrl-C reaches a run twice (the terminal's, then the stage's stop()): the second must not
    break the run's clean-up (its checkpoint's temporary file, its MLflow run's end)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_in_worker(function, params: dict, name: str, args: tuple):
    """One run in a pool process: a Ctrl-C interrupts it, and none starts once the stage stopped."""
    signal.signal(signal.SIGINT, interrupt_once)
    try:
        # The pool hands a process its next run before it is free, where cancelling cannot reach.
        if STOPPING.is_set():
            raise KeyboardInterrupt
        return function(params, name, *args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop(pool: ProcessPoolExecutor, stopping, grace: float = 30.0) -> None:
    """Interrupt the runs still going (each keeps its last checkpoint), start no other, and wait
    `grace` seconds at most for their clean-up before killing them. A second Ctrl-C meanwhile is
    ignored: the stage's exit would kill its runs (PR_SET_PDEATHSIG) in the middle of it."""
    stopping.set()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        workers = multiprocessing.active_children()
        for process in workers:
            os.kill(process.pid, signal.SIGINT)
        pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
    finally:
        signal.signal(signal.SIGINT, previous)


def run_each(function, params: dict, names: list[str], *args) -> dict:
    """{name: function(params, name, *args)} for every name; every run goes to its end (or its
    checkpoint), then the first failure is raised as one line that names its run."""
    results, failures = {}, []
    if resolve_device(params["device"]).type != "cpu":
        for name in names:
            try:
                results[name] = function(params, name, *args)
            except VaelabError as e:
                failures.append(failure(name, e))
    else:
        # fork: the processes inherit the imports. The pool forks them all at its first submit,
        # before it starts its thread and before the stage touches torch or MLflow's store.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        stopping = context.Event()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        with ProcessPoolExecutor(
            min(len(names), cores or 1),
            mp_context=context,
            initializer=start_worker,
            initargs=(os.getpid(), stopping),
        ) as pool:
            try:
                futures = [pool.submit(run_in_worker, function, params, n, args) for n in names]
                for name, future in zip(names, futures, strict=True):
                    try:
                        results[name] = future.result()
                    except VaelabError as e:
                        failures.append(failure(name, e))
            except BrokenProcessPool:  # the pool has already stopped every other run
                raise VaelabError(
                    f"a process of the runs {', '.join(names)} died (out of memory or killed) and "
                    "the pool stopped the others; rerun: each run resumes from its last checkpoint"
                ) from None
            except BaseException:  # Ctrl-C or a bug: the runs must not go on without the stage
                stop(pool, stopping)
                raise
    if failures:
        others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise VaelabError(failures[0] + others)
    return results
