"""Parameter sweeps and convergence studies: many validated cases, run serially or on Dask.

sweep file -> :func:`load_sweep` (every combination validated by the case parser, keyed by a
hash of the resolved case) -> :func:`run_sweep` (``DIR/results/<key>.npz``, ``DIR/index.csv``)
-> :func:`plot_sweep` (error against resolution with fitted slopes). :func:`map_tasks` is the
engine underneath, also used by ``fpsolver validate --scheduler``.
"""
from .driver import run_sweep  # noqa: F401
from .engine import map_tasks  # noqa: F401
from .plot import plot_sweep  # noqa: F401
from .spec import Sweep, load_sweep, run_key  # noqa: F401
