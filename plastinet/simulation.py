"""The user front door for spiking networks: one call, any backend.

>>> from plastinet import simulate                                  # doctest: +SKIP
>>> ds = simulate(net, 1.0, backend="brian2", target="cython", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from typing import Any

import xarray as xr

from plastinet.backends import Backend, get_backend
from plastinet.errors import UnsupportedError, check_numerical_policy

__all__ = ["simulate"]


def simulate(network: Any, duration: Any, *, backend: str | Backend = "numpy", target: str | None = None,
             dt: Any = 1e-4, seed: int | None = None, progress: bool = False, on_numerical: str = "raise",
             max_rate: Any = None, checkpoint_every: Any = None, checkpoint_path: Any = None,
             partial_path: Any = None, **options: Any) -> xr.Dataset:
    """Simulate a spiking :class:`~plastinet.spiking.Network` on a backend.

    Parameters
    ----------
    network : Network
        The specification (the same object runs on every backend).
    duration : float or str
        Biological time (s).
    backend : str or Backend
        ``"numpy"`` (the reference engine), ``"brian2"``, or any registered backend.
    target : str or None
        Code-generation target of backends that have one (brian2: ``"numpy"``,
        ``"cython"``, ``"cpp_standalone"``); ``None`` is the backend's default.
    dt : float or str
        Time step (s).
    seed : int or None
        Seed of the run.
    progress : bool
        Show progress.
    on_numerical : {"raise", "warn"}
        Numerical policy for non-finite states and runaway rates (``docs/reliability.md``).
    max_rate : float or str or None
        Runaway-rate limit (Hz) of LIF neurons; default ``0.5 / dt``.
    checkpoint_every, checkpoint_path, partial_path
        Durable runs (numpy backend; see :meth:`plastinet.spiking.Simulator.run`).
    **options
        Further backend constructor options (e.g. ``poisson="brian2"`` for brian2).

    Returns
    -------
    xarray.Dataset
        The layout of :mod:`plastinet.spiking.results`; attrs name the backend (and the
        brian2 target).

    Raises
    ------
    UnsupportedError
        If the backend cannot take one of the reliability arguments given (e.g.
        checkpoints on brian2), naming it.
    """
    check_numerical_policy("simulate", on_numerical)
    if target is not None:
        options["target"] = target
    be = get_backend(backend, **options) if not isinstance(backend, Backend) else backend
    be.require("spiking")
    extra = {"on_numerical": on_numerical, "max_rate": max_rate, "checkpoint_every": checkpoint_every,
             "checkpoint_path": checkpoint_path, "partial_path": partial_path}
    accepted = inspect.signature(be.simulate).parameters
    kwargs = {}
    for name, value in extra.items():
        if value is None or (name == "on_numerical" and value == "raise" and name not in accepted):
            continue
        if name not in accepted:
            raise UnsupportedError(f"backend {be.name!r}", name, value,
                                   "this backend does not support it"
                                   + ("; checkpoints are a feature of the numpy engine (backend='numpy')"
                                      if name.startswith(("checkpoint", "partial")) else ""))
        kwargs[name] = value
    return be.simulate(network, duration, dt=dt, seed=seed, progress=progress, **kwargs)
