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
import threading
import time
import traceback

import torch
from threadpoolctl import threadpool_limits

from .errors import VaelabError
from .runtime import resolve_device

PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def failure(name: str, error: BaseException) -> str:
    text = str(error)
    return text if text.startswith(name) else f"{name}: {text}"


def interrupt_once(signum, frame) -> None:
    """Ctrl-C reaches a run twice (the terminal's, then the stage's stop()): the second must not
    break the run's clean-up (its checkpoint's temporary file, its MLflow run's end)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_in_child(connection, parent: int, function, params: dict, name: str, args: tuple) -> None:
    """The body of one run's process: one thread, dies with the stage, sends back its outcome."""
    signal.signal(signal.SIGINT, interrupt_once)
    try:
        if sys.platform == "linux":  # a killed stage (kill -9 included) leaves no orphan run
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the stage died before the line above
                os._exit(1)
        torch.set_num_threads(1)
        threadpool_limits(1)
        outcome = ("done", function(params, name, *args))
    except VaelabError as e:
        outcome = ("failed", failure(name, e))
    except KeyboardInterrupt as e:
        outcome = ("raise", e)
    except BaseException as e:  # a full disk, a bug: raised again in the stage
        traceback.print_exc()  # the stage gets the exception, not where in this process it was
        outcome = ("raise", e)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is over: its outcome must arrive whole
    try:
        connection.send(outcome)
    except Exception as e:  # a result or an exception that cannot be pickled
        connection.send(("failed", f"{name}: its outcome could not be sent to the stage ({e!r})"))
    connection.close()


def stop(children: dict, grace: float = 30.0) -> None:
    """Interrupt the runs still going (each keeps its last checkpoint) and wait for them, at most
    `grace` seconds in all before killing the rest. A second Ctrl-C meanwhile is ignored: the
    stage's exit would kill its runs (PR_SET_PDEATHSIG) in the middle of their clean-up."""
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupt_and_join(children, grace)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def interrupt_and_join(children: dict, grace: float) -> None:
    for child, _ in children.values():
        if child.is_alive():
            os.kill(child.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    for child, _ in children.values():
        child.join(timeout=max(0.0, deadline - time.monotonic()))
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
        return "failed", f"{name}: its process died ({ending(child.exitcode)}); rerun"
    return outcome


def ending(code: int) -> str:
    """How a process that sent nothing ended: a signal (SIGKILL: most often the kernel's
    out-of-memory killer), or an exit code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:  # a real-time signal: not in the enum
        name = f"signal {-code}"
    return f"killed by {name}" + (", out of memory?" if -code == signal.SIGKILL else "")


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
        children, reraise = {}, None
        try:  # from the first fork: a stage stopped mid-way takes every started run with it
            for name in names:
                receive, send = context.Pipe(duplex=False)
                child = context.Process(
                    target=run_in_child, args=(send, os.getpid(), function, params, name, args)
                )
                child.start()
                send.close()  # the child's end: a dead child then reads as EOF here
                children[name] = (child, receive)
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
