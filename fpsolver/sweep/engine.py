"""The execution engine: map a function over tasks serially or on dask.distributed.

``scheduler``: ``"none"`` runs the tasks in order in this process, without Dask;
``"local"`` starts a ``LocalCluster`` of worker processes (one thread each, Numba, OpenMP,
MKL and OpenBLAS held to one thread before the processes start); any other address
(``tcp://host:8786``) connects to a running scheduler, such as one started by dask-jobqueue
on an HPC machine. Results come back as they finish, as (task index, value); a task that
raised, or whose worker died too often (``KilledWorker``), comes back as its exception.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from typing import Callable, Iterator, Optional, Sequence

from ..errors import InputError

PINNED_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


def check_scheduler(text: str, workers: Optional[int] = None) -> str:
    """'local', 'none' or a scheduler address; InputError (one line) otherwise."""
    if text not in ("local", "none") and not _ADDRESS.match(text or ""):
        raise InputError(f"--scheduler: expected local, none or an address like tcp://host:8786, got {text!r}")
    if workers is not None:
        if workers < 1:
            raise InputError(f"--workers: must be >= 1 (got {workers})")
        if text != "local":
            raise InputError("--workers applies to --scheduler local (a remote cluster sizes itself)")
    return text


def map_tasks(fn: Callable, tasks: Sequence, scheduler: str = "local",
              workers: Optional[int] = None, name: str = "task") -> Iterator[tuple[int, object]]:
    """Yield (index, fn(tasks[index]) or the exception it raised) as tasks finish."""
    check_scheduler(scheduler, workers)
    if scheduler == "none":
        for i, task in enumerate(tasks):
            try:
                yield i, fn(task)
            except Exception as exc:
                yield i, exc
        return
    if not tasks:
        return
    with _client(scheduler, workers, len(tasks)) as client:
        from distributed import as_completed
        # keys unique to this call: a shared scheduler must not mistake another sweep's task for ours
        token = uuid.uuid4().hex[:12]
        futures = [client.submit(fn, t, key=f"fpsolver-{name}-{token}-{i}", pure=False)
                   for i, t in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                try:
                    value = fut.result()
                except Exception as exc:
                    value = exc
                yield index[fut.key], value
                fut.release()
        finally:
            client.cancel([f for f in futures if not f.done()])


@contextlib.contextmanager
def _client(scheduler: str, workers: Optional[int], ntasks: int):
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(f"--scheduler {scheduler} needs dask.distributed (pip install 'fpsolver[dask]'); "
                         "--scheduler none runs without it") from None
    if scheduler != "local":
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            yield client
        return
    n = workers or min(os.cpu_count() or 1, ntasks)
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.update(PINNED_ENV)
    # Dask's default trim threshold hands freed memory back to the OS at once: the solvers'
    # many short-lived arrays then cost ~50 % more CPU time (measured), so glibc decides
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # set before the worker processes start: thread counts are read when numpy/numba load;
    # the workers' sampling profiler (a stack walk every 10 ms) would take CPU from the runs
    # Dask's nannies write these variables into this process's own environment before each
    # spawn (and a restarted worker's spawn writes them again); put the caller's values back
    # afterwards, or numba here would later refuse its changed NUMBA_NUM_THREADS
    saved = {k: os.environ.get(k) for k in (*environ, "PYTHONHASHSEED")}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                              "distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        with cluster, Client(cluster) as client:
            yield client
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
