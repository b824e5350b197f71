"""Where the cells of a sweep run: in this process, in a local process pool, or on Ray.

An engine takes ``(key, experiment_dict)`` jobs and yields ``(key, record)`` as each cell
finishes, in the order they finish; every record comes from
:func:`hnnkit.experiments.bench_cell.run_cell`, which writes no file, so the caller alone
writes the results. Each cell uses one torch thread whatever the engine, so the engines give
the same numbers.

* ``local`` (the default): with one worker, the cells run one after the other in this process;
  with more, in a pool of spawned processes (nothing to install).
* ``ray``: tasks of one CPU each on a Ray cluster (``pip install 'hnnkit[ray]'``), started
  locally with ``num_cpus=workers`` or joined at ``address`` (``auto``: the cluster this
  machine belongs to; ``HOST:PORT``: a head node's GCS). Ray is imported only here.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import HnnkitValueError
from .bench_cell import FAILED, FORMAT, run_cell

ENGINES = ("local", "ray")
#: Seconds to wait for a TCP connection to a Ray head before calling it unreachable.
CONNECT_TIMEOUT = 5.0
RAY_INSTALL = "pip install 'hnnkit[ray]'"

Job = tuple[str, dict[str, Any]]
Setup = Callable[[], object] | None


def cpu_count() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _crashed(error: BaseException) -> dict[str, Any]:
    """The record of a cell whose worker died before returning one."""
    return {
        "format": FORMAT,
        "status": FAILED,
        "config_hash": None,
        "error": f"the worker running the cell died ({type(error).__name__}: {error}); was it "
        "killed, or out of memory?",
        "traceback": "",
        "seconds": None,
        "host": None,
        "provenance": {},
    }


def run_in_process(jobs: list[Job], setup: Setup = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """The cells one after the other in this process."""
    for key, exp in jobs:
        yield key, run_cell(exp, setup)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _start_method() -> str:
    """``fork`` on Linux (Python's own default there before 3.14): a worker starts at once,
    torch and hnnkit already imported, where a spawned one takes seconds to import them, a
    fixed cost of every sweep. Each worker sets one torch thread before its first cell, so it
    never enters a thread pool copied from the driver. ``spawn`` elsewhere (macOS and Windows
    do not fork safely) and in a process that has imported Ray, whose threads a fork would copy
    mid-flight."""
    if sys.platform.startswith("linux") and "ray" not in sys.modules:
        return "fork"
    return "spawn"


def run_local_pool(
    jobs: list[Job], workers: int, setup: Setup = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The cells in a pool of ``workers`` processes, yielded as they finish. The pool starts,
    and every cell is queued, in this call, before the caller draws a progress bar (whose
    monitor thread a fork would otherwise copy)."""
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context(_start_method())
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        futures = {pool.submit(run_cell, exp, setup): key for key, exp in jobs}
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return _pool_results(pool, futures)


def _pool_results(pool: Any, futures: dict[Any, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                exc = future.exception()
                yield futures[future], future.result() if exc is None else _crashed(exc)
    finally:
        for future in pending:  # the caller stopped early (an interrupt): start no more
            future.cancel()
        pool.shutdown(wait=True)


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        HnnkitValueError: if Ray is not installed, saying how to install it.
    """
    try:
        import ray
    except ImportError as exc:
        raise HnnkitValueError(
            f"--engine ray needs Ray, which is not installed ({exc}); install it with "
            f"`{RAY_INSTALL}`, or run with the default --engine local"
        ) from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a ``HOST:PORT`` (or ``ray://HOST:PORT``) that no server answers within ``timeout``.

    Raises:
        HnnkitValueError: on a malformed address or one that cannot be reached.
    """
    bare = address.removeprefix("ray://")
    host, _, port = bare.rpartition(":")
    if not host or not port.isdigit():
        raise HnnkitValueError(
            f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the head node's "
            "address that `ray start --head` prints) or auto"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise HnnkitValueError(
            f"cannot reach a Ray cluster at --address {address} ({exc}); start the head node "
            "there with `ray start --head`, check the host and port, or leave --address out to "
            "start Ray on this machine"
        ) from None


def start_ray(workers: int, address: str | None) -> tuple[Any, bool]:
    """Ray, initialised: joined to ``address``, else started here with ``workers`` CPUs.

    Returns ``(ray, started)``, ``started`` telling whether this call initialised it (and
    the caller should shut it down).

    Raises:
        HnnkitValueError: if Ray is missing, or no cluster answers at ``address``.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address is None:
        ray.init(num_cpus=workers, **quiet)
        return ray, True
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise HnnkitValueError(
            f"cannot join a Ray cluster at --address {address} ({str(exc).splitlines()[0]}); "
            "start one with `ray start --head` (and `ray start --address=HEAD:6379` on the "
            "other machines), or leave --address out to start Ray on this machine"
        ) from None
    return ray, True


def run_ray(
    jobs: list[Job], workers: int, address: str | None, setup: Setup = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The cells as Ray tasks of one CPU each, yielded as they finish. Ray is started (or
    joined) by this call, before the first cell, so that a missing Ray or an unreachable
    ``address`` is an error at once."""
    ray, started = start_ray(workers, address)
    return _ray_results(ray, started, jobs, setup)


def _ray_results(
    ray: Any, started: bool, jobs: list[Job], setup: Setup
) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
        refs = {remote.remote(exp, setup): key for key, exp in jobs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        record = ray.get(ref)
                    except Exception as exc:  # the worker died (RayTaskError, WorkerCrashedError)
                        record = _crashed(exc)
                    yield refs[ref], record
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()


def run_jobs(
    jobs: list[Job],
    *,
    engine: str = "local",
    workers: int = 1,
    address: str | None = None,
    setup: Setup = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Run ``jobs`` on ``engine``; ``(key, record)`` as each finishes."""
    if engine == "ray":
        return run_ray(jobs, workers, address, setup)
    if workers <= 1 or len(jobs) <= 1:
        return run_in_process(jobs, setup)
    return run_local_pool(jobs, workers, setup)
