"""The runs of a sweep side by side: one process per run, one thread each.

Why: a shapes run is small. One process with two threads keeps two cores only ~70% busy (the
shapes VAE trains at ~1,190 img/s), and every stage pays ~13 s of Python, torch and MLflow
start-up. Single-thread processes forked from one stage pay the start-up once and fill the cores
(two of them: ~1,730 img/s together, docs/benchmarks.md). One thread per run (torch, and the BLAS
and OpenMP pools of numpy and scikit-learn) also makes each run's numbers independent of how many
cores the machine has.

Each run has its own process: a run that dies (out of memory, killed) takes no other run with it. On an accelerator the runs go one after another in the stage's own process:
they would share one device anyway.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import traceback

import torch
from threadpoolctl import threadpool_limits

from .errors import VaelabError
from .runtime import resolve_device

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def failure(name: str, error: BaseException) -> str:
    text = str(error)
    return text if text.startswith(name) else f"{name}: {text}"


def run_in_child(connection, parent: int, function, params: dict, name: str, args: tuple) -> None:
    """The body of one run's process: one thread, dies with the stage, sends back its outcome."""
    torch.set_num_threads(1)
    threadpool_limits(1)
    if sys.platform == "linux":  # a killed stage (kill -9 included) leaves no orphan run behind
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the stage died before the line above
            os._exit(1)
    try:
        outcome = ("done", function(params, name, *args))
    except VaelabError as e:
        outcome = ("failed", failure(name, e))
    except BaseException as e:  # a full disk, Ctrl-C, a bug: raised again in the stage
        traceback.print_exc()  # the stage gets the exception, not where in this process it was
        outcome = ("raise", e)
    try:
        connection.send(outcome)
    except Exception as e:  # a result or an exception that cannot be pickled
        connection.send(("failed", f"{name}: its outcome could not be sent to the stage ({e!r})"))
    connection.close()


def stop(children: dict) -> None:
    """Interrupt the runs still going (each keeps its last checkpoint) and wait for them."""
    for child, _ in children.values():
        if child.is_alive():
            os.kill(child.pid, signal.SIGINT)
    for child, _ in children.values():
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
            child.join()


def receive_outcome(name: str, child, receive) -> tuple[str, object]:
    try:
        outcome = receive.recv()
    except EOFError:  # the process ended without a word: killed, or out of memory
        outcome = None
    except Exception as e:  # the outcome arrived but cannot be unpickled here
        outcome = ("failed", f"{name}: its outcome could not be read ({e!r})")
    child.join()
    if outcome is None:
        code = child.exitcode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return "failed", f"{name}: its process died ({how}; out of memory or killed); rerun"
    return outcome


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
        # fork: the children inherit the imports. All are forked before the stage starts any
        # thread, touches torch's thread pool or opens MLflow's store, so nothing is forked mid-use.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        children = {}
        for name in names:
            receive, send = context.Pipe(duplex=False)
            child = context.Process(
                target=run_in_child, args=(send, os.getpid(), function, params, name, args)
            )
            child.start()
            send.close()  # the child's end: a dead child then reads as EOF here
            children[name] = (child, receive)
        reraise = None
        try:
            for name, (child, receive) in children.items():
                kind, value = receive_outcome(name, child, receive)
                if kind == "done":
                    results[name] = value
                elif kind == "failed":
                    failures.append(value)
                else:
                    reraise = reraise or value
        finally:  # the stage alone got a signal or failed: its runs must not go on without it
            stop(children)
        if reraise is not None:
            raise reraise
    if failures:
        others = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise VaelabError(failures[0] + others)
    return results
